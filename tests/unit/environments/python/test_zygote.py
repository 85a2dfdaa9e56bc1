"""Python environments forked from a per-version zygote."""

import json
import os
import signal
import time
import uuid

import pytest

from runner.confinement import namespaces
from runner.environments.base import InvokeRequest
from runner.environments.python.runtime import PythonRuntime
from runner.environments.python.zygote import ZygoteBackend
from runner.errors import EnvironmentGone, FunctionInitError
from runner.model import FunctionConfig, FunctionVersion


@pytest.fixture
def backend(tmp_path):
    b = ZygoteBackend(PythonRuntime(), str(tmp_path / "work"))
    os.makedirs(b.tmp_root)
    yield b
    b.close()


def version(tmp_path, source, revision=1, **cfg):
    code = tmp_path / f"code{revision}"
    code.mkdir()
    (code / "app.py").write_text(source)
    return FunctionVersion("z", "$LATEST", revision, FunctionConfig("python", "app.handler", **cfg), "d", str(code))


def call(env, payload=b"{}", timeout=3.0):
    return env.invoke(InvokeRequest(str(uuid.uuid4()), payload, timeout, time.monotonic() + timeout, {}))


def started(backend, v):
    env = backend.create(v)
    env.start()
    return env


RANDOM_SRC = """
import os, random, time, uuid
INIT_AT = time.time()
INIT_PID = os.getpid()
print("init once")
def handler(e, c):
    return {"init_at": INIT_AT, "init_pid": INIT_PID, "pid": os.getpid(),
            "random": [random.random() for _ in range(3)], "uuid": str(uuid.uuid4())}
"""


def test_init_runs_once_and_environments_fork_from_it(backend, tmp_path):
    v = version(tmp_path, RANDOM_SRC)
    a, b = started(backend, v), started(backend, v)
    ra, rb = json.loads(call(a).payload), json.loads(call(b).payload)
    assert ra["init_at"] == rb["init_at"] and ra["init_pid"] == rb["init_pid"]  # one init
    assert a.pid != b.pid  # two processes (host pids)
    if a.zygote.env_namespaces:  # each environment is PID 1 of its own PID namespace
        assert ra["pid"] == rb["pid"] == 1 != ra["init_pid"]
    else:
        assert ra["pid"] != rb["pid"] != ra["init_pid"]
    assert a.init_logs == b"init once\n" and b.init_logs == b""  # the first paid for the init
    a.destroy(), b.destroy()


def test_forked_environments_never_share_rng_or_uuid_streams(backend, tmp_path):
    v = version(tmp_path, RANDOM_SRC)
    envs = [started(backend, v) for _ in range(4)]
    outs = [json.loads(call(e).payload) for e in envs]
    assert len({tuple(o["random"]) for o in outs}) == 4
    assert len({o["uuid"] for o in outs}) == 4
    for e in envs:
        e.destroy()


def test_zygote_reports_exit_status_of_children(backend, tmp_path):
    v = version(tmp_path, "import os\ndef handler(e, c):\n    os._exit(3)\n")
    env = started(backend, v)
    out = call(env)
    assert out.error.error_type == "Runtime.ExitError" and "exit status 3" in out.error.message
    assert not out.reusable


def test_timeout_kills_forked_environment(backend, tmp_path):
    v = version(tmp_path, "import time\ndef handler(e, c):\n    time.sleep(30)\n")
    env = started(backend, v)
    pid = env.pid
    out = call(env, timeout=1.0)
    assert out.error.error_type == "Sandbox.Timedout" and not out.reusable
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    again = started(backend, v)  # the zygote keeps serving
    again.destroy()


def test_dead_zygote_is_rebuilt_on_next_cold_start(backend, tmp_path):
    v = version(tmp_path, RANDOM_SRC)
    first = started(backend, v)
    # init_at, not init_pid: every new sandbox has its own PID namespace, so pids repeat.
    before = json.loads(call(first).payload)["init_at"]
    zygote, _ = backend.zygote(v)
    os.killpg(zygote.proc.pid, signal.SIGKILL)
    zygote.proc.wait(timeout=5)
    env = started(backend, v)
    after = json.loads(call(env).payload)["init_at"]
    assert after != before and env.init_logs == b"init once\n"
    if namespaces.mode() == "off":
        assert call(first).payload  # environments forked earlier keep working on their own
    else:
        # Forked environments live in the zygote's PID namespace, which the kernel tears down
        # with it: an invocation sent to one finds it gone before anything was delivered, and
        # the Runner runs it elsewhere (EnvironmentGone); the next cold start is fine.
        deadline = time.monotonic() + 5
        while first.launched_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(EnvironmentGone):
            call(first)
        assert first.state.value == "dead"
    first.destroy(), env.destroy()


def test_init_error_is_reported_and_retried(backend, tmp_path):
    # Each init prints a fresh token: the guest cannot leave a marker on the host (it has no
    # view of the host's files), so distinct tokens show that each cold start re-ran init.
    v = version(tmp_path, "import os\nprint('loading', os.urandom(8).hex())\nraise ImportError('no db')\n")
    tokens = []
    for attempt in (1, 2):
        env = backend.create(v)
        with pytest.raises(FunctionInitError) as e:
            env.start()
        assert "no db" in e.value.message and env.init_logs.startswith(b"loading ")
        tokens.append(env.init_logs)
    assert tokens[0] != tokens[1]  # each cold start retries the init


def test_threads_at_init_fall_back_to_spawning(backend, tmp_path):
    v = version(tmp_path, "import os, threading, time\n"
                          "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
                          "ENV = os.urandom(8).hex()\n"
                          "def handler(e, c):\n    return ENV\n")
    a, b = started(backend, v), started(backend, v)
    zygote, _ = backend.zygote(v)
    assert zygote.forkable is False
    pa, pb = json.loads(call(a).payload), json.loads(call(b).payload)
    assert pa != pb and a._tmp_dir is not None  # plain spawned environments, own scratch
    a.destroy(), b.destroy()


def test_forget_closes_the_zygote(backend, tmp_path):
    v = version(tmp_path, RANDOM_SRC)
    started(backend, v).destroy()
    zygote, _ = backend.zygote(v)
    backend.forget(v)
    assert zygote.proc.wait(timeout=5) is not None and not zygote.alive


def test_zygote_lost_before_fork_is_rebuilt_once(backend, tmp_path, monkeypatch):
    v = version(tmp_path, RANDOM_SRC)
    started(backend, v).destroy()
    old, _ = backend.zygote(v)
    os.killpg(old.proc.pid, signal.SIGKILL)
    old.proc.wait(timeout=5)
    real = backend.zygote
    calls = []

    def stale_then_real(ver, hold=False):  # the race: handed out just before it died
        calls.append(ver.key)
        if len(calls) > 1:
            return real(ver, hold=hold)
        old.holders += hold  # as zygote() counts a hold; the environment releases it
        return old, False

    monkeypatch.setattr(backend, "zygote", stale_then_real)
    env = started(backend, v)
    assert len(calls) == 2 and env.zygote is not old and env.zygote.alive
    assert call(env).error is None
    env.destroy()


TRACE_SRC = """
import logging, os
logging.getLogger().setLevel(logging.INFO)
def handler(e, c):
    logging.info("in handler")
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "rid": c.aws_request_id}
"""


def test_launched_child_is_ready_without_a_second_handshake(backend, tmp_path):
    # A forked child inherits the zygote's init, so launch() (what the pre-start pool runs
    # ahead of demand) leaves it READY, and start() at the cold start has nothing left to do.
    v = version(tmp_path, TRACE_SRC)
    env = backend.create(v)
    env.launch()
    assert env.state.value == "ready"
    env.start()
    assert env.init_duration_ms < 50  # the hand-over only, not a fork or an init phase
    env.destroy()


def test_first_invocation_after_the_warm_up_sees_only_its_own_request(backend, tmp_path):
    # The child runs the bootstrap's invoke path once before it is handed out; nothing of that
    # dry run may show in the first real invocation: trace id, request id, log lines.
    v = version(tmp_path, TRACE_SRC)
    env = started(backend, v)
    rid = str(uuid.uuid4())
    out = env.invoke(InvokeRequest(rid, b"{}", 3.0, time.monotonic() + 3.0, {}))
    body = json.loads(out.payload)
    assert body == {"trace": f"Root={rid}", "rid": rid}
    assert b"warm-up" not in out.logs and rid.encode() in out.logs
    env.destroy()


def test_zygote_limit_leaves_room_for_its_live_children(tmp_path):
    from runner.confinement import limits
    from runner.environments.python.zygote_process import (
        CHILD_CHARGE_BYTES,
        SPARE_CHILDREN,
        zygote_memory_limit,
    )
    from runner.pool import prestart

    assert SPARE_CHILDREN >= prestart.MAX_PER_VERSION  # spares are live children too
    v = version(tmp_path, RANDOM_SRC, memory_mb=128, concurrency=100)
    room = zygote_memory_limit(v) - 128 * limits.MB
    assert room >= (100 + prestart.MAX_PER_VERSION) * CHILD_CHARGE_BYTES
    big = version(tmp_path, RANDOM_SRC, revision=2, memory_mb=4096, concurrency=100)
    # Page tables grow with the zygote: a bigger function leaves more per child.
    assert zygote_memory_limit(big) - 4096 * limits.MB > room


def test_many_live_children_do_not_exhaust_the_zygotes_memory(backend, tmp_path):
    """Each live child leaves ~1.5 MB charged to the zygote's memory cgroup (pages the zygote
    wrote after the fork stay with the child). At the function's own 128 MB the zygote was
    OOM-killed at ~77 live environments, and its PID namespace took all of them down."""
    v = version(tmp_path, RANDOM_SRC, memory_mb=128, concurrency=100)
    envs = []
    try:
        for _ in range(95):
            envs.append(started(backend, v))
        zygote, _ = backend.zygote(v)
        outs = [call(e) for e in envs]
        assert [o.error for o in outs if o.error is not None] == []
        assert zygote.alive and all(e.zygote is zygote for e in envs)  # never rebuilt
        if zygote.enforcement is not None and zygote.enforcement.group is not None:
            from runner.environments.python.zygote_process import zygote_memory_limit

            assert zygote.enforcement.group.memory_limit() == zygote_memory_limit(v)
            assert not zygote.enforcement.oom_killed()
    finally:
        for e in envs:
            e.destroy()


def test_a_stopped_zygote_cannot_hold_a_timed_out_invocation(backend, tmp_path, monkeypatch):
    """A guest can signal its zygote (same sandbox): stopped, the zygote never reaps nor
    reports the child the timeout kills. The invocation still ends at its timeout plus the
    kill grace, not when (if ever) the zygote resumes. Only with per-environment namespaces
    off: with them, the child is PID 1 of its own namespace and cannot name its zygote
    (tests/security/test_environment_namespaces.py)."""
    import threading

    monkeypatch.setenv("RUNNER_ENV_NAMESPACES", "off")

    from runner.environments.python.forked import innermost

    v = version(tmp_path, "import os, signal, time\ndef handler(e, c):\n"
                          "    os.kill(os.getppid(), signal.SIGSTOP)\n    time.sleep(30)\n", timeout_s=1)
    env = started(backend, v)
    zygote, _ = backend.zygote(v)
    zpid = innermost(zygote.proc.pid).pid
    resume = threading.Timer(25.0, os.kill, (zpid, signal.SIGCONT))  # bounds a failing run
    resume.start()
    try:
        t0 = time.monotonic()
        out = call(env, timeout=1.0)
        elapsed = time.monotonic() - t0
        assert out.error.error_type == "Sandbox.Timedout" and not out.reusable
        assert elapsed < 10, f"the invocation waited {elapsed:.1f} s for a stopped zygote"
    finally:
        resume.cancel()
        os.kill(zpid, signal.SIGCONT)
        env.destroy()


def test_init_code_writing_garbage_to_the_zygote_channel_is_an_init_error(backend, tmp_path):
    # Module-level code runs in the zygote and can reach its control socket.
    v = version(tmp_path, "import gc, socket\n"
                          "[o for o in gc.get_objects() if isinstance(o, socket.socket)][0].send(b'\\xc1')\n"
                          "def handler(e, c):\n    return 1\n")
    with pytest.raises(FunctionInitError) as info:
        started(backend, v)
    assert info.value.error_type == "Runtime.InvalidResponse" and "0xc1" in info.value.message


def test_a_forgotten_version_never_gets_a_zygote_again(backend, tmp_path):
    # A straggler (an invocation that resolved the version just before an update, a spare
    # planned before a delete) must not build a zygote nothing would ever close again.
    from runner.errors import ZygoteDead

    v = version(tmp_path, RANDOM_SRC)
    started(backend, v).destroy()
    backend.forget(v)
    with pytest.raises(ZygoteDead, match="retired"):
        backend.zygote(v)
    backend.prewarm(v)  # a no-op now
    env = started(backend, v)  # served by a plain environment
    assert env.zygote is None and json.loads(call(env).payload)["pid"]
    assert v.key not in backend._zygotes
    env.destroy()


def test_concurrent_closes_of_a_zygote_close_it_once(backend, tmp_path):
    import threading

    v = version(tmp_path, RANDOM_SRC)
    zygote, _ = backend.zygote(v)
    errors = []

    def close():
        try:
            zygote.close()
        except Exception as exc:  # e.g. EBADF from a second os.close of the log pipe
            errors.append(exc)

    threads = [threading.Thread(target=close) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and not zygote.alive


def test_discarding_a_zygote_lets_its_running_invocations_finish(backend, tmp_path):
    # A zygote dropped because it stopped answering (not dead) still has healthy environments;
    # closing it at once would end its PID namespace, and them with it.
    import threading

    v = version(tmp_path, "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return 'done'\n",
                timeout_s=10)
    env = started(backend, v)
    zygote, _ = backend.zygote(v)
    out = []
    t = threading.Thread(target=lambda: out.append(call(env, b'{"s": 1.5}', timeout=10.0)))
    t.start()
    time.sleep(0.3)
    backend.discard(v, zygote)
    t.join(15)
    assert out and out[0].error is None and out[0].payload == b'"done"'
    env.destroy()
    deadline = time.monotonic() + 10
    while zygote.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zygote.proc.poll() is not None  # closed once its children were gone


def test_a_discarded_zygotes_environments_take_no_further_invocation(backend, tmp_path):
    # Its idle children stayed in the pool and kept taking invocations until the zygote was
    # closed at its bound (timeout + 10 s), which killed whichever of them was running one
    # (the load test's "Runtime.ExitError ... SIGKILL" on healthy calls). Now each finishes
    # what it runs and is then dropped, and the zygote closes as soon as they are gone.
    import threading

    v = version(tmp_path, "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return 'done'\n",
                timeout_s=10)
    busy, idle = started(backend, v), started(backend, v)
    zygote, _ = backend.zygote(v)
    out = []
    t = threading.Thread(target=lambda: out.append(call(busy, b'{"s": 1.0}', timeout=10.0)))
    t.start()
    time.sleep(0.3)
    assert idle.launched_alive()
    backend.discard(v, zygote)
    assert not idle.launched_alive()  # the pool's upkeep destroys it instead of reusing it
    t.join(15)
    assert out and out[0].error is None and out[0].payload == b'"done"'
    assert not out[0].reusable  # finished, then destroyed rather than put back idle
    busy.destroy()
    idle.destroy()
    deadline = time.monotonic() + 5  # well inside the old bound (10 s + 10 s)
    while zygote.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zygote.proc.poll() is not None
    fresh = started(backend, v)  # the version goes on, on a new zygote
    assert call(fresh).payload == b'"done"' and fresh.zygote is not zygote
    fresh.destroy()


def test_an_init_that_prints_more_than_a_pipe_holds_still_finishes(backend, tmp_path):
    # The zygote's init output is read while the init runs (launch.run_init, as for any
    # environment): a pipe nobody drained held the zygote at 64 KiB until its init timed out.
    v = version(tmp_path, "import sys\nsys.stdout.write('x' * 200_000 + '\\n')\n"
                          "def handler(e, c):\n    return 1\n", timeout_s=3)
    t0 = time.monotonic()
    env = started(backend, v)
    assert time.monotonic() - t0 < 8 and call(env).payload == b"1"
    assert env.init_logs.startswith(b"x" * 1000) and len(env.init_logs) == 200_001
    env.destroy()


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _cpu_quota(group) -> float:
    """The group's CPU quota as a fraction of one CPU, read back from the kernel."""
    if group.layout.version == 2:
        quota, period = _read(group._file("cpu", "cpu.max")).split()
        return float("inf") if quota == "max" else int(quota) / int(period)
    quota = int(_read(group._file("cpu", "cpu.cfs_quota_us")))
    return float("inf") if quota < 0 else quota / int(_read(group._file("cpu", "cpu.cfs_period_us")))


def test_the_zygote_forks_with_a_whole_cpu_and_its_children_get_the_functions_share(backend, tmp_path):
    # Issue 17, item 7: at the function's share (7% of a CPU at 128 MB) a loaded host throttled
    # the zygote's fork loop, and every cold start of the version waited behind it.
    v = version(tmp_path, RANDOM_SRC, memory_mb=128)
    env = started(backend, v)
    zygote, _ = backend.zygote(v)
    if zygote.enforcement is None or zygote.enforcement.group is None:
        pytest.skip("no cgroup on this host: no CPU quota to check")
    try:
        assert _cpu_quota(zygote.enforcement.group) == pytest.approx(1.0)
        assert _cpu_quota(env._enforcement.group) == pytest.approx(128 / 1769, rel=0.02)
    finally:
        env.destroy()


def test_a_timeout_is_reported_at_once_even_when_the_zygote_cannot_reap(backend, tmp_path):
    # Issue 17, item 7: the kill, the reap (which waits for the zygote's report) and the cgroup
    # removal ran inline before a timeout was returned; a stopped or throttled zygote held a 1 s
    # timeout for its 2 x 2 s kill grace. Now the kill is inline, the rest in the background.
    from runner.environments.process import teardown
    from runner.environments.python.forked import innermost

    v = version(tmp_path, "import os, signal, time\ndef handler(e, c):\n"
                          "    os.kill(os.getppid(), signal.SIGSTOP)\n    time.sleep(30)\n", timeout_s=1)
    env = started(backend, v)
    zygote, _ = backend.zygote(v)
    zpid = innermost(zygote.proc.pid).pid
    try:
        t0 = time.monotonic()
        out = call(env, timeout=1.0)
        elapsed = time.monotonic() - t0
        assert out.error.error_type == "Sandbox.Timedout" and not out.reusable
        # The old path took >= 1 s + 2 s (KILL_GRACE_S); the bound leaves a busy host 0.9 s.
        assert elapsed < 1.9, f"the timeout was reported after {elapsed:.2f} s"
    finally:
        os.kill(zpid, signal.SIGCONT)
    assert teardown.drain(10.0)  # the background part finishes once the zygote runs again
