"""The Node.js runtime under failure: timeouts, heap exhaustion, crashes, uncaught errors, limits."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from runner.environments.backends import default_backends
from runner.environments.base import EnvState
from runner.environments.node.process_policy import find_node, old_space_mb
from runner.environments.node.runtime import NodeRuntime
from runner.errors import FunctionCrashed, FunctionOutOfMemory, FunctionTimeout
from tests.unit.environments.node._node_helpers import guest, guest_process, request, version, write_code


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    backends = default_backends(str(tmp_path_factory.mktemp("envs")))
    yield backends["nodejs"]


@pytest.fixture
def started(backend):
    envs = []

    def start(v):
        env = backend.create(v)
        envs.append(env)
        env.start()
        return env

    yield start
    for env in envs:
        env.destroy()


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def gone(pid: int, within_s: float = 5.0) -> bool:
    """The process is dead (or a zombie) within `within_s`: destroy() sends SIGKILL inline but
    the kernel delivers it, and the teardown threads reap, a moment later
    (environments/process/teardown.py)."""
    deadline = time.monotonic() + within_s
    while not dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def limit(pid: int, name: str) -> tuple[str, str]:
    """(soft, hard) of one resource limit as /proc shows it: readable even for a guest running
    under another uid, where prlimit(2) from here may be refused."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                soft, hard = line[len(name):].split()[:2]
                return soft, hard
    raise AssertionError(f"{name!r} not in /proc/{pid}/limits")


def named_oom(message: str) -> bool:
    """V8's heap limit trips first here; on a host whose cgroup memory limit is tighter than
    node's footprint the kernel may kill first. Both are out-of-memory errors, named."""
    return "JavaScript heap out of memory" in message or "OOM killer" in message


def test_never_settling_handler_times_out_and_is_killed(started):
    env = started(guest("never_settles", timeout_s=1))
    pid = env.pid
    t0 = time.monotonic()
    out = env.invoke(request({}, timeout_s=1.0))
    elapsed = time.monotonic() - t0
    assert isinstance(out.error, FunctionTimeout)
    assert out.error.message == "Task timed out after 1.00 seconds"
    assert not out.reusable and env.state is EnvState.DEAD
    assert gone(pid)
    assert elapsed < 1.0 + 3.0  # deadline plus the kill-and-reap margin of environments/base.py


def test_busy_loop_times_out_and_is_killed(started, tmp_path):
    code = write_code(tmp_path, {"index.js": "exports.handler = () => { for (;;) {} };"})
    env = started(version(code, timeout_s=1))
    pid = env.pid
    out = env.invoke(request({}, timeout_s=1.0))
    assert isinstance(out.error, FunctionTimeout) and not out.reusable
    assert gone(pid)


def test_heap_blow_up_is_out_of_memory_and_replaced(started):
    env = started(guest("heap_hog", memory_mb=128))
    pid = env.pid
    out = env.invoke(request({}, timeout_s=20.0))
    assert isinstance(out.error, FunctionOutOfMemory), out.error and out.error.to_document()
    assert out.error.error_type == "Runtime.OutOfMemory"
    assert "out of memory (limit 128 MB)" in out.error.message
    assert named_oom(out.error.message)
    assert not out.reusable and env.state is EnvState.DEAD
    assert gone(pid)
    if "JavaScript" in out.error.message:
        assert b"heap out of memory" in out.logs  # V8's own report stays in the invocation's log
    # A fresh environment of the same version serves again (the pool's replacement path).
    fresh = started(guest("heap_hog", memory_mb=128))
    assert fresh.state is EnvState.READY and fresh.pid != pid


def test_heap_blow_up_during_init(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "const keep = []; for (;;) keep.push(new Array(100000).fill(2.5));\n"
        "exports.handler = async () => 1;\n")})
    with pytest.raises(FunctionOutOfMemory) as info:
        started(version(code, memory_mb=128))
    assert named_oom(info.value.message)


def test_uncaught_exception_in_a_timer_fails_the_invocation(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "exports.handler = () => new Promise(() => {"
        " setTimeout(() => { throw new Error('late boom'); }, 1); });\n")})
    env = started(version(code))
    out = env.invoke(request({}))
    doc = out.error.to_document()
    assert (doc["errorType"], doc["errorMessage"]) == ("Error", "late boom")
    assert not out.reusable and env.state is EnvState.DEAD


def test_unhandled_rejection_is_fatal(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "exports.handler = (e, ctx, cb) => { Promise.reject(new Error('nobody awaits'));"
        " setTimeout(() => cb(null, 'late'), 200); };\n")})
    env = started(version(code))
    out = env.invoke(request({}))
    doc = out.error.to_document()
    assert doc["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert doc["errorMessage"] == "Error: nobody awaits"
    assert not out.reusable


def test_process_exit_is_a_crash(started, tmp_path):
    code = write_code(tmp_path, {"index.js": "exports.handler = async () => process.exit(3);"})
    out = started(version(code)).invoke(request({}))
    assert isinstance(out.error, FunctionCrashed)
    assert "exit status 3" in out.error.message
    assert not out.reusable


def test_abort_without_heap_message_is_a_crash_not_oom(started, tmp_path):
    code = write_code(tmp_path, {"index.js": "exports.handler = async () => process.abort();"})
    out = started(version(code)).invoke(request({}))
    assert isinstance(out.error, FunctionCrashed), out.error
    assert "SIGABRT" in out.error.message


def test_limits_no_address_space_cap_and_heap_flag(started):
    env = started(guest("hello", memory_mb=512))
    proc = guest_process(env)
    assert limit(proc.pid, "Max address space") == ("unlimited", "unlimited")  # V8 needs it
    assert limit(proc.pid, "Max open files") == ("1024", "1024")
    assert f"--max-old-space-size={old_space_mb(512)}" in proc.cmdline()


def test_classify_death_keys_on_the_v8_message():
    rt = NodeRuntime(find_node() or "/usr/bin/node")
    v = guest("hello", memory_mb=256)
    oom = rt.classify_death(v, -signal.SIGABRT, b"FATAL ERROR: Reached heap limit Allocation failed - "
                            b"JavaScript heap out of memory\n")
    assert isinstance(oom, FunctionOutOfMemory) and "limit 256 MB" in oom.message
    assert isinstance(rt.classify_death(v, 134, b"JavaScript heap out of memory"), FunctionOutOfMemory)
    assert rt.classify_death(v, -signal.SIGABRT, b"some other fatal error") is None
    assert rt.classify_death(v, 1, b"") is None
    # A handler printing the phrase and exiting is not an out-of-memory death.
    assert rt.classify_death(v, 1, b"JavaScript heap out of memory") is None


def test_old_space_tracks_memory():
    assert old_space_mb(128) == 64
    assert old_space_mb(1024) == 960
    assert old_space_mb(10240) == 10176


def test_node_absent_means_no_nodejs_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no node on it
    backends = default_backends(str(tmp_path))
    assert "nodejs" not in backends and "python" in backends


def test_destroy_is_idempotent_and_reaps(started):
    env = started(guest("hello"))
    pid = env.pid
    env.destroy()
    env.destroy()
    assert env.state is EnvState.DEAD and gone(pid)
    assert not os.path.exists(f"/proc/{pid}/cmdline") or gone(pid)


def test_off_heap_blow_up_is_out_of_memory(started, tmp_path):
    # Buffers live outside V8's heap: RLIMIT_DATA (via prlimit) is what bounds them here.
    assert NodeRuntime(find_node()).prlimit is not None, "this test needs util-linux prlimit"
    code = write_code(tmp_path, {"index.js": (
        "const keep = [];\n"
        "exports.handler = async () => { for (;;) keep.push(Buffer.alloc(1 << 20, 1)); };\n")})
    env = started(version(code, memory_mb=128))
    out = env.invoke(request({}, timeout_s=20.0))
    assert isinstance(out.error, FunctionOutOfMemory), out.error and out.error.to_document()
    assert not out.reusable
    assert named_oom(out.error.message)


def test_data_limit_follows_memory(started):
    env = started(guest("hello", memory_mb=256))
    soft, hard = limit(guest_process(env).pid, "Max data size")
    assert soft == hard == str((256 + 64) * 1024 * 1024)


def test_rejection_left_over_from_init_fails_the_first_invocation(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "Promise.reject(new Error('init reject'));\n"
        "exports.handler = async () => 'never';\n")})
    env = started(version(code))
    out = env.invoke(request({}))
    doc = out.error.to_document()
    assert doc["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert doc["errorMessage"] == "Error: init reject"
    assert not out.reusable and env.state is EnvState.DEAD


def test_uncaught_error_while_an_esm_module_loads_is_an_init_error(started, tmp_path):
    from runner.errors import FunctionInitError

    code = write_code(tmp_path, {"index.mjs": (
        "setTimeout(() => { throw new TypeError('timer during init'); }, 0);\n"
        "await new Promise((r) => setTimeout(r, 200));\n"
        "export const handler = async () => 1;\n")})
    with pytest.raises(FunctionInitError) as info:
        started(version(code))
    assert (info.value.error_type, info.value.message) == ("TypeError", "timer during init")


def test_nodes_start_up_memory_is_the_environments(started):
    """node's own start-up (V8 heap, its threads' stacks) counts against the environment's
    memory limit: the sandbox joins its cgroup before node's exec (isolation.Gate). Joined
    after hello, the group held ~1 MB of node's ~6 MB of anonymous memory."""
    from runner.confinement import limits

    assert limits.cgroup_layout() is not None, limits.cgroup_problem()
    env = started(guest("hello"))
    with open(f"/proc/{guest_process(env).pid}/status") as f:
        anon = next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))
    assert anon > 2 * 1024 * 1024
    assert env.memory_bytes() >= 0.9 * anon, (env.memory_bytes(), anon)
