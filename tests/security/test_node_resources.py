"""Node.js variants of the attacks on shared resources (test_resources.py): memory (V8 heap and
off-heap Buffers), CPU (worker threads), output volume, and the network."""

from __future__ import annotations

import io
import json
import socket
import statistics
import threading
import time
import uuid
import zipfile

import psutil
import pytest

from runner.confinement import limits, namespaces
from runner.environments.node.snapshot import OPT_IN_VAR
from runner.errors import FunctionOutOfMemory
from tests.security.conftest import (
    alternating_p99s,
    assert_neighbour_fine,
    request,
    result,
    wait_pids_gone,
)

MB = 1 << 20

# Up to 8 GiB each. A V8 heap blow-up trips --max-old-space-size; zero-filled Buffers are
# untouched pages that RLIMIT_DATA refuses (V8 aborts on the failed allocation); filled
# Buffers are real pages the cgroup's memory limit refuses (the kernel's OOM killer).
HOGS = {
    "js_heap": "hoard.push(new Array(1 << 17).fill(i));",
    "buffer_untouched": "hoard.push(Buffer.alloc(8 << 20));",
    "buffer_touched": "hoard.push(Buffer.allocUnsafe(8 << 20).fill(i));",
}


@pytest.mark.parametrize("kind", sorted(HOGS))
def test_memory_hog_is_killed_and_reported_out_of_memory(hn, kind):
    env = hn.node_function(f"memory_hog_{kind}", """
        exports.handler = async () => {
          const hoard = [];
          for (let i = 0; i < 65536; i++) %s
          return { survived: hoard.length };
        };
    """ % HOGS[kind], memory_mb=128)
    a = hn.attack(env)
    assert_neighbour_fine(a)
    err = a.outcome.error
    assert isinstance(err, FunctionOutOfMemory), (err, a.outcome.payload)
    assert "out of memory (limit 128 MB)" in err.message, err.message
    if kind == "js_heap":
        assert "JavaScript heap out of memory" in err.message
    assert a.outcome.reusable is False
    # The cgroup's own peak: never past the limit (+ page rounding).
    assert a.outcome.max_memory_bytes <= 129 * MB


HOG = """
const { Worker } = require('worker_threads');
const SPIN = `
const { workerData, parentPort } = require('worker_threads');
const end = Date.now() + workerData;
let n = 0;
while (Date.now() < end) n++;
parentPort.postMessage(n);
`;
function spin(ms) {
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) n++;
  return n;
}
exports.handler = async (event) => {
  const ms = event.seconds * 1000;
  const workers = [];
  for (let i = 0; i < event.threads - 1; i++) {
    workers.push(new Promise((resolve, reject) => {
      const w = new Worker(SPIN, { eval: true, workerData: ms });
      w.once('message', resolve);
      w.once('error', reject);
    }));
  }
  const n = spin(ms);
  return { spins: [n, ...(await Promise.all(workers))] };
};
"""


def test_cpu_hog_does_not_starve_a_latency_sensitive_neighbour(hn):
    """An infinite-loop style hog: 4 spinning threads (main + 3 workers) in a function configured
    for 1 vCPU (1769 MB); the quota holds them all to one CPU. Same alternating-rounds method as
    the Python test, with fewer, shorter rounds to keep the suite's run time modest."""
    hog = hn.node_function("infinite_loop", HOG, memory_mb=1769, timeout_s=30)
    group = hog._enforcement.group

    def burst():
        return result(hog.invoke(request({"threads": 4, "seconds": 1.5}, timeout_s=30)))

    base, loaded, outs = alternating_p99s(hn, burst, rounds=5, n=30)
    assert all(len(out["spins"]) == 4 and min(out["spins"]) > 0 for out in outs), outs
    assert group.cpu_throttled_us() > 0  # the quota, not luck, kept the hog in check
    b, l = statistics.median(base), statistics.median(loaded)
    assert l <= 2 * b, f"neighbour p99 {l:.1f} ms under load vs {b:.1f} ms baseline ({base} / {loaded})"


def test_stdout_flood_is_truncated_and_memory_bounded(hn):
    env = hn.node_function("stdout_flood", """
        const fs = require('fs');
        exports.handler = async (event) => {
          const chunk = Buffer.alloc(1 << 20, 65);
          for (let i = 0; i < event.mib; i++) {
            let off = 0;
            while (off < chunk.length) {
              try {
                off += fs.writeSync(1, chunk, off);
              } catch (e) {
                if (e.code !== 'EAGAIN') throw e;  // the pipe is full: the host is behind
              }
            }
          }
          console.log('and through console.log too');
          return { wrote_mib: event.mib };
        };
    """, memory_mb=1769, timeout_s=120)
    me = psutil.Process()
    rss0 = me.memory_info().rss
    a = hn.attack(env, {"mib": 2048}, timeout_s=120)
    assert_neighbour_fine(a)
    assert result(a.outcome) == {"wrote_mib": 2048}
    assert len(a.outcome.logs) <= MB + 200
    assert a.outcome.logs.startswith(b"A" * 4096)  # the guest's own bytes, up to the cap
    assert a.outcome.logs.rstrip().endswith(b"log truncated: output over 1 MiB per invocation dropped")
    assert b"console.log" not in a.outcome.logs  # dropped too: past the cap
    assert me.memory_info().rss - rss0 < 64 * MB


CONNECT = """
const net = require('net');
function attempt(opts) {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, 2000);
    s.on('connect', () => {
      clearTimeout(timer);
      s.end('hello from guest');
      resolve('connected');
    });
    s.on('error', (e) => { clearTimeout(timer); resolve(e.code); });
  });
}
exports.handler = async (event) => ({
  loopback: await attempt({ host: '127.0.0.1', port: event.port }),
  grpc: await attempt({ host: '127.0.0.1', port: event.grpc }),
});
"""


class _Listener:
    """A TCP server on the host's loopback, counting connections. (Node's `net` cannot address
    abstract Unix sockets at all, so those are not tried from here.)"""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.tcp.settimeout(0.5)

    def accepted(self) -> int:
        n = 0
        while True:
            try:
                c, _ = self.tcp.accept()
            except (TimeoutError, socket.timeout):
                return n
            c.close()
            n += 1

    def event(self, h) -> dict:
        return {"port": self.tcp.getsockname()[1], "grpc": h.port}

    def close(self) -> None:
        self.tcp.close()


def test_socket_to_host_loopback_is_blocked_without_network(hn):
    srv = _Listener()
    try:
        env = hn.node_function("connect_host_loopback", CONNECT)
        a = hn.attack(env, srv.event(hn))
        assert_neighbour_fine(a)
        out = result(a.outcome)
        assert out == {"loopback": "ECONNREFUSED", "grpc": "ECONNREFUSED"}, out
        assert srv.accepted() == 0
    finally:
        srv.close()


def test_network_flag_gives_outbound_access(hn):
    # The documented behaviour (docs/security.md), and proof the guest above really tried.
    srv = _Listener()
    try:
        env = hn.node_function("connect_with_network", CONNECT, network=True)
        out = result(env.invoke(request(srv.event(hn))))
        assert out == {"loopback": "connected", "grpc": "connected"}, out
        assert srv.accepted() == 1
    finally:
        srv.close()


# Module-level code runs once at deploy time when the function opts in to a startup snapshot
# (runner/environments/node/snapshot_build.py), outside any environment: it floods stdout and
# stderr, both of which the build hands back to the server (node's stdout is sent to stderr
# there). The blob's own channel is a root-owned pipe the guest cannot reopen through /proc; its
# size cap is unit-tested.
FLOOD_AT_INIT = """
const fs = require('fs');
const chunk = Buffer.alloc(1 << 20, 66);
for (let i = 0; i < 1024; i++) {
  let off = 0;
  while (off < chunk.length) {
    try {
      off += fs.writeSync(1 + (i % 2), chunk, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}
exports.handler = async () => ({ ok: true });
"""


def _zip_js(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.js", source)
    return buf.getvalue()


def test_output_flood_during_snapshot_build_is_bounded(hn):
    me = psutil.Process()
    rss0 = me.memory_info().rss
    box = {}
    t = threading.Thread(target=lambda: box.update(version=hn.runner.deploy(
        "snapshot_flood", _zip_js(FLOOD_AT_INIT), runtime="nodejs", handler="index.handler",
        environment={OPT_IN_VAR: "1"}, memory_mb=128)))
    peak = [rss0]

    def sample():  # the server's peak RSS while the build runs (freed memory would hide it)
        while t.is_alive():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.005)

    t.start()
    sampler = threading.Thread(target=sample)
    sampler.start()
    during = []
    while t.is_alive() or not during:
        during.append(hn.ask_neighbour(f"during-{len(during)}"))
        time.sleep(0.05)
    t.join()
    sampler.join()
    assert all(r["ok"] for r in during)
    assert peak[0] - rss0 < 64 * MB, (peak[0] - rss0) / MB  # 1 GiB printed, none of it held
    snapshots = hn.runner.pool.backends["nodejs"].runtime_impl.snapshots
    version = box["version"]
    # A noisy init is still a valid snapshot, and the function serves from it.
    assert snapshots.reason(version) is None and snapshots.blob_for(version) is not None
    out = hn.runner.invoke("snapshot_flood", b"{}")
    assert json.loads(out.payload) == {"ok": True}
    assert hn.ask_neighbour("after")["ok"]


# A fork bomb in module-level code at snapshot-build time: 1500 processes (past the pids limit of
# an environment), kept alive for a second while the host counts them, then killed by the guest
# itself (a node left at the pids ceiling hangs the build until its timeout, 60 s).
BOMB_AT_INIT = """
const { spawn } = require('child_process');
const kids = [];
for (let n = 0; n < 1500; n++) {
  const c = spawn('/usr/bin/sleep', ['30', process.env.TAG], { stdio: 'ignore' });
  if (c.pid === undefined) break;  // refused: the pids limit
  c.unref();
  kids.push(c);
}
const end = Date.now() + 1000;
while (Date.now() < end);
for (const c of kids) c.kill('SIGKILL');
exports.handler = async () => ({ ok: true });
"""


def test_fork_bomb_during_snapshot_build_is_bounded(hn):
    tag = f"{4000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    box, seen, peak = {}, set(), [0]
    t = threading.Thread(target=lambda: box.update(version=hn.runner.deploy(
        "snapshot_fork_bomb", _zip_js(BOMB_AT_INIT), runtime="nodejs", handler="index.handler",
        environment={OPT_IN_VAR: "1", "TAG": tag}, memory_mb=512, timeout_s=30)))
    t.start()
    while t.is_alive():
        bombs = [p.pid for p in psutil.process_iter(["cmdline"]) if tag in (p.info["cmdline"] or [])]
        seen.update(bombs)
        peak[0] = max(peak[0], len(bombs))
        time.sleep(0.02)
    t.join()
    assert 100 < peak[0] <= limits.PIDS, peak  # it ran, and stopped at an environment's limit
    assert wait_pids_gone(seen) == []  # nothing of the build outlives it
    assert hn.ask_neighbour("after")["ok"]
    assert box["version"].config.runtime == "nodejs"  # the deploy itself went through


UNSHARE_AT_INIT = """
const { spawnSync } = require('child_process');
// Runs once, in the snapshot build: what it saw is kept in the snapshot's heap.
const atInit = spawnSync('unshare', ['-Ur', 'true']).stderr.toString();
exports.handler = async () => ({ atInit, snapshot: !!globalThis.__runnerMpack });
"""


def test_snapshot_build_runs_under_the_seccomp_filter(hn):
    # The build runs the handler's module-level code at deploy time: it gets the same filter
    # as an environment (the gate hands it to bwrap), so the init cannot make a namespace.
    if namespaces.seccomp_problem() is not None:
        pytest.skip(f"no seccomp filter here: {namespaces.seccomp_problem()}")
    hn.runner.deploy("snapshot_unshare", _zip_js(UNSHARE_AT_INIT), runtime="nodejs",
                     handler="index.handler", environment={OPT_IN_VAR: "1"}, memory_mb=512)
    out = json.loads(hn.runner.invoke("snapshot_unshare", b"{}").payload)
    assert out["snapshot"] is True  # the init ran in the build, not in the environment
    assert "Operation not permitted" in out["atInit"], out
