"""destroy() and Backend.close() while a guest call runs on another thread: the store must not
be freed under running code; the call ends promptly and the environment is torn down."""

from __future__ import annotations

import threading
import time

from runner.environments.base import EnvState
from runner.errors import FunctionCrashed
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started


def invoke_in_background(env, timeout_s, payload=b"{}"):
    result = {}

    def run():
        result["outcome"] = invoke(env, payload, timeout_s=timeout_s)

    t = threading.Thread(target=run)
    t.start()
    while env.state is not EnvState.BUSY:
        time.sleep(0.001)
    time.sleep(0.05)  # inside the guest's loop
    return t, result


def test_backend_close_during_an_invocation_ends_it_and_cleans_up(tmp_path):
    b = new_backend(tmp_path)
    env = started(b, deploy(tmp_path, "infinite_loop", timeout_s=30))
    t, result = invoke_in_background(env, 30.0)
    b.close()  # must not wait 30 s, and must not free the store under the running loop
    t.join(timeout=15)
    assert not t.is_alive()
    out = result["outcome"]
    assert isinstance(out.error, FunctionCrashed) and "shut down" in out.error.message
    assert not out.reusable and env.state is EnvState.DEAD


def test_destroy_during_a_reactor_call_defers_to_the_end_of_the_call(tmp_path):
    b = new_backend(tmp_path)
    env = started(b, deploy(tmp_path, "cpu_bound", "handle", timeout_s=1, memory_mb=1769))
    t, result = invoke_in_background(env, 1.0, b'{"n": 99999999999999}')
    env.destroy()
    assert env.state is EnvState.BUSY  # still running: teardown waits for the call
    t.join(timeout=15)
    assert result["outcome"].error is not None and not result["outcome"].reusable
    assert env.state is EnvState.DEAD and env._store is None
    b.close()


def test_leftovers_of_a_dead_runner_process_are_removed(tmp_path):
    import os

    import psutil

    from runner.confinement import cgroup_hierarchy
    from runner.errors import CgroupUnavailable

    dead = next(p for p in range(4_000_000, 4_100_000) if not psutil.pid_exists(p))
    io_dir = f"/dev/shm/runner-wasm-io-{dead}-stale123"
    os.makedirs(io_dir)
    lane = None
    try:
        home = cgroup_hierarchy.v1_own_group("cpu")
    except (CgroupUnavailable, OSError):
        home = None
    if home is not None and os.access(home, os.W_OK):
        lane = os.path.join(home, f"runner-wasm-{dead}-1", "lane-1")
        os.makedirs(lane)
    b = new_backend(tmp_path)
    assert not os.path.exists(io_dir)
    if lane is not None:
        assert not os.path.exists(os.path.dirname(lane))
    b.close()
