"""The subprocess environment with the real Python bootstrap, without the layers above."""

import os
import time
import uuid

import pytest

from runner.errors import FunctionInitError
from runner.model import FunctionConfig, FunctionVersion
from runner.sandbox import process
from runner.sandbox.base import EnvState, InvokeRequest
from runner.sandbox.process import ProcessEnvironment
from runner.sandbox.python import PythonRuntime


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
    monkeypatch.setattr(process, "MAX_LOG_BYTES", 64 * 1024)
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
    # is on, else the host scratch dir; either way the host scratch dir goes with destroy().
    env = make(tmp_path, "import os, tempfile\ndef handler(e, c):\n    open(os.path.join(tempfile.gettempdir(), 'x'), 'w').close()\n    return tempfile.gettempdir()\n")
    env.start()
    tmp = __import__("json").loads(env.invoke(req()).payload)
    host_tmp = env._tmp_dir
    assert os.path.isdir(host_tmp) and host_tmp.startswith(str(tmp_path / "work"))
    assert tmp in ("/tmp", host_tmp)
    env.destroy()
    assert not os.path.exists(host_tmp)
