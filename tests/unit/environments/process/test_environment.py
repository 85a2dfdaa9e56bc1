"""The subprocess environment with the real Python bootstrap, without the layers above."""

import os
import time
import uuid

import pytest

from runner.environments.base import EnvState, InvokeRequest
from runner.environments.process import channel, environment, teardown
from runner.environments.process.environment import ProcessEnvironment
from runner.environments.python.runtime import PythonRuntime
from runner.errors import FunctionInitError
from runner.model import FunctionConfig, FunctionVersion


def make(tmp_path, source, **cfg):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(source)
    version = FunctionVersion("t", "$LATEST", 1, FunctionConfig("python", "app.handler", **cfg), "d", str(code))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return ProcessEnvironment(version, PythonRuntime(), str(work))


def req(payload=b"{}", timeout=3.0):
    return InvokeRequest(str(uuid.uuid4()), payload, timeout, time.monotonic() + timeout, {})


def test_launch_then_start_then_invoke(tmp_path):
    env = make(tmp_path, "print('init ran')\ndef handler(e, c):\n    print('hi', e)\n    return e\n")
    env.launch()
    assert env.state is EnvState.NEW and env.pid > 0
    env.start()
    assert env.state is EnvState.READY and env.init_logs == b"init ran\n"
    out = env.invoke(req(b'{"a": 1}'))
    assert out.payload == b'{"a": 1}' and out.logs == b"hi {'a': 1}\n" and out.reusable
    assert out.max_memory_bytes > 0
    env.destroy()
    env.destroy()  # idempotent
    assert env.state is EnvState.DEAD


def test_guest_stdout_cannot_corrupt_protocol(tmp_path):
    env = make(tmp_path, "import sys, os\ndef handler(e, c):\n    os.write(1, b'\\x00\\x00\\x00\\x05garbage')\n"
                         "    sys.stdout.buffer.write(bytes(range(256)))\n    return 'ok'\n")
    env.start()
    out = env.invoke(req())
    assert out.payload == b'"ok"' and b"garbage" in out.logs
    env.destroy()


def test_crash_is_reported_and_not_reusable(tmp_path):
    env = make(tmp_path, "import os\ndef handler(e, c):\n    os._exit(3)\n")
    env.start()
    out = env.invoke(req())
    assert out.error.error_type == "Runtime.ExitError" and "exit status 3" in out.error.message
    assert not out.reusable and env.state is EnvState.DEAD


def test_invoking_an_environment_killed_while_idle_raises_environment_gone(tmp_path):
    # Nothing reached the guest, so the invocation may run elsewhere (the Runner retries it):
    # a platform signal, not a FunctionCrashed charged to the function.
    from runner.errors import EnvironmentGone

    env = make(tmp_path, "def handler(e, c):\n    return 1\n")
    env.start()
    assert env.launched_alive()
    import psutil

    # The guest interpreter itself, as the OOM killer would pick it (under a namespace wrapper
    # env.pid is the wrapper's, and the guest is in a session of its own).
    root = psutil.Process(env.pid)
    guest = ([p for p in root.children(recursive=True) if "python" in p.name()] or [root])[-1]
    guest.kill()
    deadline = time.monotonic() + 5
    while env.launched_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not env.launched_alive()  # the wrapper follows its guest
    with pytest.raises(EnvironmentGone, match="exited while idle"):
        env.invoke(req())
    assert env.state is EnvState.DEAD


def test_a_frame_that_breaks_the_protocol_is_an_invalid_response_not_a_timeout(tmp_path):
    # The handler writes a bogus frame on its control socket (the guest owns those bytes).
    env = make(tmp_path, "import gc, socket\ndef handler(e, c):\n"
                         "    s = [o for o in gc.get_objects() if isinstance(o, socket.socket)][0]\n"
                         "    s.sendall(b'\\x00\\x00\\x00\\x01\\xc1')\n    import time; time.sleep(30)\n")
    env.start()
    t0 = time.monotonic()
    out = env.invoke(req(timeout=10.0))
    assert out.error.error_type == "Runtime.InvalidResponse" and "undecodable frame" in out.error.message
    assert time.monotonic() - t0 < 5 and not out.reusable and env.state is EnvState.DEAD


def test_a_response_over_the_limit_is_refused_in_the_guest(tmp_path):
    # 20 MB is over the frame limit too: the guest must refuse it before sending, as Lambda does.
    env = make(tmp_path, "def handler(e, c):\n    return 'x' * (20 * 1024 * 1024)\n")
    env.start()
    out = env.invoke(req(timeout=10.0))
    assert out.error.error_type == "Function.ResponseSizeTooLarge" and "6291456 bytes" in out.error.message
    assert out.reusable and env.state is EnvState.READY  # the handler's error, not a crash
    env.destroy()


def test_a_handler_that_closes_its_stdout_still_returns(tmp_path):
    env = make(tmp_path, "import sys\ndef handler(e, c):\n    sys.stdout.close()\n    return 'closed'\n")
    env.start()
    out = env.invoke(req())
    assert out.error is None and out.payload == b'"closed"' and out.reusable
    env.destroy()


def test_signal_death(tmp_path):
    env = make(tmp_path, "import os, signal\ndef handler(e, c):\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
    env.start()
    out = env.invoke(req())
    assert "SIGSEGV" in out.error.message and not out.reusable


def test_init_error_leaves_environment_dead(tmp_path):
    env = make(tmp_path, "raise KeyError('cfg')\n")
    with pytest.raises(FunctionInitError) as e:
        env.start()
    assert e.value.error_type == "KeyError" and env.state is EnvState.DEAD


def test_log_flood_is_truncated_with_marker(tmp_path, monkeypatch):
    monkeypatch.setattr(channel, "MAX_LOG_BYTES", 64 * 1024)
    env = make(tmp_path, "import sys\ndef handler(e, c):\n    for _ in range(200):\n        sys.stdout.write('z' * 10000)\n    return 1\n")
    env.start()
    out = env.invoke(req())
    assert out.payload == b"1"
    assert len(out.logs) < 64 * 1024 + 200 and b"log truncated" in out.logs
    env.destroy()


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVER_SECRET", "hunter2")
    env = make(tmp_path, "import os\ndef handler(e, c):\n    return sorted(os.environ)\n", environment={"MINE": "1"})
    env.start()
    keys = __import__("json").loads(env.invoke(req()).payload)
    assert "SERVER_SECRET" not in keys and "MINE" in keys and "_RUNNER_FD" not in keys
    env.destroy()


def test_private_tmp_dir_is_removed(tmp_path):
    # The guest's TMPDIR is its sandbox's own /tmp (a tmpfs that dies with it) when isolation
    # is on, else the host scratch dir; either way the host scratch dir goes with destroy()
    # (its background half: teardown.py).
    env = make(tmp_path, "import os, tempfile\ndef handler(e, c):\n    open(os.path.join(tempfile.gettempdir(), 'x'), 'w').close()\n    return tempfile.gettempdir()\n")
    env.start()
    tmp = __import__("json").loads(env.invoke(req()).payload)
    host_tmp = env._tmp_dir
    assert os.path.isdir(host_tmp) and host_tmp.startswith(str(tmp_path / "work"))
    assert tmp in ("/tmp", host_tmp)
    env.destroy()
    assert teardown.drain(10.0)
    assert not os.path.exists(host_tmp)


def test_guest_closing_its_stdout_does_not_spin_the_host(tmp_path, monkeypatch):
    import resource

    from runner.confinement import namespaces

    # Unwrapped (a host without namespaces): under bubblewrap the wrapper keeps its own copy
    # of the pipe, so the guest closing fds 1 and 2 would not even reach EOF.
    monkeypatch.setattr(namespaces, "mode", lambda: "off")

    env = make(tmp_path, "import os, time\ndef handler(e, c):\n    os.close(1)\n    os.close(2)\n"
                         "    time.sleep(0.5)\n    return 'done'\n")
    env.start()
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = env.invoke(req())
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert out.payload == b'"done"'
    # A spinning wait loop would burn ~0.5 s of CPU here; a blocked one almost none.
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 0.2
    env.destroy()


def test_event_larger_than_the_socket_buffer(tmp_path):
    env = make(tmp_path, "def handler(e, c):\n    return len(e)\n")
    env.start()
    big = b'"' + b"x" * (5 * 1024 * 1024) + b'"'
    assert env.invoke(req(big)).payload == str(5 * 1024 * 1024).encode()
    env.destroy()


CONTEXT_HANDLER = (
    "def handler(e, c):\n"
    "    return {'name': c.function_name, 'version': c.function_version, 'rid': c.aws_request_id,\n"
    "            'stream': c.log_stream_name, 'remaining': c.get_remaining_time_in_millis()}\n"
)


def test_context_is_sent_once_and_kept_until_it_changes(tmp_path, monkeypatch):
    import json
    from dataclasses import replace

    frames = []
    real_encode = environment.encode_marshal  # Python guests get invoke frames in marshal
    monkeypatch.setattr(environment, "encode_marshal", lambda msg: frames.append(msg) or real_encode(msg))
    env = make(tmp_path, CONTEXT_HANDLER)
    env.start()
    ctx = {"function_name": "t", "function_version": "$LATEST", "log_stream_name": "s1"}
    now_ms = int(time.time() * 1000)
    first = InvokeRequest("r1", b"{}", 3.0, time.monotonic() + 3.0, ctx, now_ms + 3000)
    out1 = json.loads(env.invoke(first).payload)
    # The same context object with a later deadline: the frame omits ctx; the guest keeps it.
    out2 = json.loads(env.invoke(replace(first, request_id="r2", deadline_ms=now_ms + 60_000)).payload)
    # A different context object is sent, and the guest switches to it.
    other = dict(ctx, function_version="3")
    out3 = json.loads(env.invoke(replace(first, request_id="r3", context=other)).payload)
    env.destroy()
    invokes = [f for f in frames if f["t"] == "invoke"]
    assert ["ctx" in f for f in invokes] == [True, False, True]
    assert all("deadline_ms" in f for f in invokes)
    assert (out1["name"], out1["version"], out1["rid"], out1["stream"]) == ("t", "$LATEST", "r1", "s1")
    assert (out2["name"], out2["version"], out2["rid"]) == ("t", "$LATEST", "r2")
    assert 0 < out1["remaining"] <= 3000 < out2["remaining"] <= 60_000
    assert (out3["version"], out3["rid"]) == ("3", "r3")


def test_deadline_inside_context_still_counts(tmp_path):
    """A caller that puts deadline_ms in the context (the older shape) gets it honoured."""
    import json

    env = make(tmp_path, CONTEXT_HANDLER)
    env.start()
    ctx = {"function_name": "t", "deadline_ms": int(time.time() * 1000) + 2000}
    out = json.loads(env.invoke(InvokeRequest("r", b"{}", 3.0, time.monotonic() + 3.0, ctx)).payload)
    env.destroy()
    assert 0 < out["remaining"] <= 2000


def _rss_anon(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no RssAnon for pid {pid}")


def test_runtime_start_up_is_charged_to_the_environment(tmp_path):
    """The interpreter's own start-up memory counts against the environment's limit, not the
    server's group: the sandbox is placed in its cgroup before the runtime's exec
    (namespaces.Gate). Placed after hello, the group held ~1 MB of a ~6 MB interpreter."""
    import psutil

    from runner.confinement import limits, namespaces

    assert limits.cgroup_layout() is not None, limits.cgroup_problem()
    assert namespaces.mode() != "off", namespaces.problem()
    env = make(tmp_path, "def handler(e, c):\n    return 1\n")
    env.launch()
    try:
        procs = [psutil.Process(env.pid), *psutil.Process(env.pid).children(recursive=True)]
        guest = [p for p in procs if p.name().startswith("python")]
        assert len(guest) == 1, procs
        anon = _rss_anon(guest[0].pid)
        assert anon > 2 * 1024 * 1024  # an interpreter, not a stub
        charged = env.memory_bytes()
        assert charged >= 0.9 * anon, (charged, anon)
        # The CPU quota is in force once the runtime said hello (its start-up ran without one).
        from runner.confinement import cgroup_hierarchy

        group = env._enforcement.group
        want = max(cgroup_hierarchy.CPU_QUOTA_MIN_US, int(cgroup_hierarchy.CPU_PERIOD_US * 128 / 1769))
        if group.layout.version == 2:
            with open(group._file("cpu", "cpu.max")) as f:
                assert f.read().split() == [str(want), str(cgroup_hierarchy.CPU_PERIOD_US)]
        else:
            with open(group._file("cpu", "cpu.cfs_quota_us")) as f:
                assert int(f.read()) == want
    finally:
        env.destroy()
