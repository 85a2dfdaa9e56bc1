"""How a guest process starts (launch.py) and what it sees (lambda_env.py), without a runtime."""

import os
import sys
import time

import pytest

from runner.environments.process import launch
from runner.environments.process.frames import encode
from runner.environments.process.lambda_env import guest_environment
from runner.environments.process.launch import InitReply, run_init, spawn
from runner.errors import (
    FunctionInitError,
    InitInvalidResponse,
    InternalError,
    RuntimeExited,
)
from runner.model import FunctionConfig, FunctionVersion


def version(tmp_path, **cfg):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    return FunctionVersion("f", "$LATEST", 3, FunctionConfig("python", "app.handler", **cfg), "d", str(code))


def test_the_guest_environment_is_lambdas_then_the_functions_then_the_runtimes(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVER_SECRET", "hunter2")
    v = version(tmp_path, environment={"MINE": "1", "LANG": "mine", "PYTHONUNBUFFERED": "0"})
    env = guest_environment(v, "/scratch", {"PYTHONUNBUFFERED": "1"})
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "f" and env["_HANDLER"] == "app.handler"
    assert env["HOME"] == env["TMPDIR"] == "/scratch" and env["LAMBDA_TASK_ROOT"] == v.code_dir
    assert env["MINE"] == "1" and env["LANG"] == "mine"  # the function's override Lambda's
    assert env["PYTHONUNBUFFERED"] == "1"  # the runtime's override the function's
    assert "SERVER_SECRET" not in env


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def unwrapped(monkeypatch):
    """No bubblewrap: spawn runs argv itself (with bwrap, bwrap starts whatever argv holds)."""
    from runner.confinement import namespaces

    monkeypatch.setattr(namespaces, "mode", lambda: "off")


def test_a_runtime_that_cannot_start_is_an_internal_error_and_leaks_nothing(tmp_path, unwrapped):
    v = version(tmp_path)
    before = _open_fds()
    with pytest.raises(InternalError, match="cannot start the test runtime"):
        spawn([str(tmp_path / "no-such-binary")], v, str(tmp_path), {}, address_space=True,
              what="the test runtime")
    # Nothing new stays open. (Not equality: a background thread of an earlier test, an
    # environment's teardown or a pool's spare, may close one of its own meanwhile.)
    assert _open_fds() - before == set()


def test_spawn_gives_the_guest_its_channel_and_log_pipe(tmp_path, unwrapped):
    # Nothing but the interpreter's own `sys` and `os` (no bootstrap): the channel descriptor
    # is in _RUNNER_FD, stdout is the log pipe, and the guest sees exactly the env it was given.
    v = version(tmp_path)
    script = ("import os, socket, sys; s = socket.socket(fileno=int(os.environ['_RUNNER_FD']));"
              "print(sorted(os.environ)); sys.stdout.flush(); s.sendall(bytes.fromhex(sys.argv[1]))")
    hello = encode({"t": "hello", "pid": 1}).hex()
    started = spawn([sys.executable, "-I", "-S", "-c", script, hello], v, str(tmp_path), {"ONLY": "me"},
                    address_space=True, what="a test guest")
    try:
        assert started.gate is None  # no sandbox to hold
        logs = bytearray()
        assert started.channel.wait(time.monotonic() + 10, logs) == {"t": "hello", "pid": 1}
        started.proc.wait(timeout=10)
        started.channel.drain_log(logs)
        assert b"'ONLY'" in logs and b"'_RUNNER_FD'" in logs and b"PATH" not in logs
    finally:
        started.channel.close()
        started.proc.wait(timeout=10)


def reply(message=None, bad_frame=None, timed_out=False):
    return InitReply(message, b"", 10.0, timed_out, bad_frame)


def test_what_an_init_reply_means():
    assert reply({"t": "ready", "init_ms": 1.0}).error() is None
    assert not reply().answered and reply(timed_out=True).error() is None  # the owner decides
    err = reply({"t": "init_error", "error": {"errorType": "KeyError", "errorMessage": "cfg"}}).error()
    assert type(err) is FunctionInitError and (err.error_type, err.message) == ("KeyError", "cfg")
    odd = reply({"t": "result"}).error()
    assert isinstance(odd, InitInvalidResponse) and odd.error_type == InitInvalidResponse.error_type
    bad = reply(bad_frame="undecodable frame: byte 0xc1 is not msgpack")
    assert bad.answered and isinstance(bad.error(), InitInvalidResponse) and "0xc1" in bad.error().message


def test_run_init_sends_init_and_bounds_the_wait_by_the_functions_timeout(tmp_path):
    class Channel:
        timed_out, bad_frame, sent = True, None, []

        def send_now(self, msg):
            self.sent.append(msg)

        def wait(self, deadline, logs):
            self.deadline = deadline
            logs += b"printed"
            return None

    chan = Channel()
    got = run_init(chan, version(tmp_path, timeout_s=30))
    assert chan.sent == [{"t": "init"}] and got.timeout_s == 30 and got.timed_out
    assert got.logs == b"printed" and chan.deadline - time.monotonic() > 25
    assert run_init(chan, version(tmp_path, timeout_s=1)).timeout_s == launch.INIT_TIMEOUT_S


def test_start_up_failures_are_runtime_exited():
    assert issubclass(RuntimeExited, FunctionInitError) and RuntimeExited.error_type == "Runtime.ExitError"
