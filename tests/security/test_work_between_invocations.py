"""A guest that keeps working between invocations: a background thread (Python), an interval
worker thread (Node.js). Before idle environments were frozen, such a guest burned its whole CPU quota
while idle; now the pool freezes an environment it keeps idle, and invoke() thaws it (as
Lambda freezes its environments between invocations). Measured on the environment's cgroup
processes with psutil: the frozen second costs no CPU, whatever else the host is doing.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from runner.pool.pool import PoolManager

PY_SPINNER = """
import threading
count = [0]
def spin():
    while True:
        count[0] += 1
def handler(event, context):
    if event.get("start"):
        threading.Thread(target=spin, daemon=True).start()
    return count[0]
"""
NODE_SPINNER = """
const { Worker } = require('worker_threads');
let worker;
exports.handler = async (event) => {
  // A worker thread: the bootstrap's blocking wait for the next invocation stops the main
  // event loop's timers anyway, but not another thread.
  if (event.start) worker = new Worker('for (;;) {}', { eval: true });
  return worker ? worker.threadId : 0;
};
"""

def _zip(name: str, source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, source)
    return buf.getvalue()


def _idle_env(runner, name):
    version = runner.get(name)
    vp = runner.pool._pools[version.key]
    assert len(vp.idle) == 1
    return vp.idle[0].env


@pytest.mark.parametrize("runtime, filename, handler, source", [
    ("python", "app.py", "app.handler", PY_SPINNER),
    ("nodejs", "index.js", "index.handler", NODE_SPINNER),
])
def test_an_idle_environment_gets_no_cpu_until_its_next_invocation(h, runtime, filename,
                                                                   handler, source):
    if not isinstance(h.runner.pool, PoolManager) or not h.runner.pool.freeze_idle:
        pytest.fail("the runner must freeze idle environments by default")
    name = f"spin-{runtime}"
    h.runner.deploy(name, _zip(filename, source), runtime=runtime, handler=handler,
                    memory_mb=1769, timeout_s=10)
    first = json.loads(h.runner.invoke(name, b'{"start": true}').payload)
    env = _idle_env(h.runner, name)
    if env._enforcement is None or env._enforcement.group is None:
        pytest.skip("no cgroup on this host: nothing to freeze an environment with")
    time.sleep(0.2)  # the freeze completes in the background
    before = env._enforcement.group.cpu_seconds()
    time.sleep(1.0)
    idle = env._enforcement.group.cpu_seconds() - before
    assert idle < 0.05, f"the idle environment used {idle:.2f} s of CPU in 1 s"
    # Thawed for the next invocation: the background work resumed where it stood.
    second = json.loads(h.runner.invoke(name, b"{}").payload)
    assert second >= first
    t0 = time.monotonic()
    h.runner.delete(name)  # a frozen environment is destroyed at once (thawed to die)
    assert time.monotonic() - t0 < 1.5
