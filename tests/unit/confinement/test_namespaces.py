"""namespaces.py: the sandbox command line, and runtimes' interpreters running inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from runner.confinement import namespaces
from runner.errors import InternalError
from runner.model import FunctionConfig, FunctionVersion


def version(tmp_path, **cfg) -> FunctionVersion:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("def handler(e, c):\n    return 1\n")
    os.chmod(code, 0o755)
    return FunctionVersion("f", "$LATEST", 1, FunctionConfig("python", "app.handler", **cfg), "s", str(code))


def run(argv, v):
    wrapped = namespaces.wrap(argv, v, "/nonexistent-host-scratch")
    return subprocess.run(wrapped, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_code_dir_arguments_move_to_var_task(tmp_path):
    v = version(tmp_path)
    argv = namespaces.wrap([sys.executable, "-c", "pass", os.path.join(v.code_dir, "app.py")], v, "/x")
    assert argv[-1] == "/var/task/app.py"
    assert argv[-4] == os.path.realpath(sys.executable)  # venv symlinks resolved
    assert "--unshare-net" in argv and "--unshare-pid" in argv


def test_network_flag_keeps_the_host_network(tmp_path):
    assert "--unshare-net" not in namespaces.wrap(["/usr/bin/true"], version(tmp_path, network=True), "/x")


def test_python_runs_inside_with_its_own_view(tmp_path):
    v = version(tmp_path, ephemeral_storage_mb=8)
    r = run([sys.executable, "-I", "-S", "-c",
             "import os; st = os.statvfs('/tmp'); "
             "print(os.getuid(), os.environ['LAMBDA_TASK_ROOT'], os.getcwd(), st.f_blocks * st.f_frsize, "
             "os.path.exists('/etc/shadow'), os.path.exists(%r))" % str(tmp_path)], v)
    assert r.returncode == 0, r.stderr
    uid, root, cwd, tmp_size, shadow, host_path = r.stdout.split()
    assert int(uid) >= namespaces.GUEST_UID_BASE
    assert root == cwd == "/var/task"
    assert int(tmp_size) == 8 << 20
    assert shadow == "False" and host_path == "False"


def test_node_runs_inside(tmp_path):
    """The Node.js runtime's interpreter (installed by scripts/setup-system.sh) works in the
    sandbox, without RLIMIT_AS (it is a cgroup host)."""
    node = shutil.which("node")
    assert node, "node missing: run scripts/setup-system.sh"
    r = run([node, "-e", "console.log(process.getuid(), process.cwd(), require('fs').existsSync('/etc/shadow'))"],
            version(tmp_path))
    assert r.returncode == 0, r.stderr
    uid, cwd, shadow = r.stdout.split()
    assert int(uid) >= namespaces.GUEST_UID_BASE and cwd == "/var/task" and shadow == "false"


def test_unreadable_code_dir_is_refused_with_the_fix(tmp_path):
    v = version(tmp_path)
    os.chmod(v.code_dir, 0o700)
    with pytest.raises(InternalError) as e:
        namespaces.wrap(["/usr/bin/true"], v, "/x")
    assert "code_dir" in e.value.message and "o+rX" in e.value.message


def test_wrapper_exit_status_maps_to_the_guests_signal():
    assert namespaces.guest_returncode(128 + 11) == -11
    assert namespaces.guest_returncode(3) == 3
    assert namespaces.guest_returncode(None) is None


@pytest.mark.parametrize("kind", ["spawn", "zygote"])
def test_environment_outlives_the_thread_that_spawned_it(tmp_path, kind):
    """Environments are spawned on request threads that come and go; nothing of the sandbox
    (e.g. a parent-death signal, which is per thread) may tie the guest to that thread."""
    import threading
    import time

    from runner.environments.backends import ProcessBackend
    from runner.environments.python.runtime import PythonRuntime
    from runner.environments.python.zygote import ZygoteBackend
    from tests.security.conftest import make_version, request, result

    v = make_version(tmp_path, "outlive", "def handler(e, c):\n    return 'alive'\n")
    os.makedirs(str(tmp_path / "envs"), exist_ok=True)
    backend = (ZygoteBackend if kind == "zygote" else ProcessBackend)(PythonRuntime(), str(tmp_path / "envs"))
    env = backend.create(v)
    t = threading.Thread(target=env.start)
    t.start()
    t.join()
    try:
        time.sleep(0.2)  # a parent-death signal would have landed by now
        assert result(env.invoke(request())) == "alive"
    finally:
        env.destroy()
        backend.close()


def test_runtime_files_under_tmp_stay_visible(tmp_path):
    """A checkout (or venv) under /tmp, as a CI clone may be: its runtime files are bound
    outside the sandbox's private /tmp, neither hidden by it nor visible in it."""
    assert str(tmp_path).startswith("/tmp/")
    tools = tmp_path / "runtime"
    tools.mkdir()
    script = tools / "boot.py"
    script.write_text("import os\nprint('booted', os.listdir('/tmp'))\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(tools, 0o755)
    os.chmod(script, 0o644)
    r = run([sys.executable, "-I", "-S", str(script)], version(tmp_path))
    assert r.returncode == 0, r.stderr
    # ...and they do not show in the guest's /tmp, which starts empty.
    assert r.stdout.split() == ["booted", "[]"]


def test_gate_holds_the_command_until_released(tmp_path):
    v = version(tmp_path)
    gate = namespaces.new_gate()
    assert gate is not None, "this host runs bwrap (isolation mode %s)" % namespaces.mode()
    argv = namespaces.wrap(["/usr/bin/sh", "-c", "echo started"], v, "/x", gate=gate)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, pass_fds=gate.child_fds)
    try:
        gate.spawned()
        child = gate.wait_sandbox(10)
        assert child is not None and child != proc.pid
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)  # held: nothing ran
        gate.release()
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and out == b"started\n", err
    finally:
        gate.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_gate_reports_a_sandbox_that_never_came_up(tmp_path):
    v = version(tmp_path)
    gate = namespaces.new_gate()
    argv = namespaces.wrap(["/usr/bin/true"], v, "/x", gate=gate)
    argv.insert(1, "--no-such-bwrap-option")  # bwrap refuses to start
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, pass_fds=gate.child_fds)
    try:
        gate.spawned()
        assert gate.wait_sandbox(10) is None
        assert proc.wait(timeout=10) != 0
    finally:
        gate.close()
