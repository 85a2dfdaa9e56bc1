"""The CLI contract, against a real `runner serve` process."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest


def run_cli(address, *args, timeout=60):
    env = dict(os.environ, RUNNER_ADDRESS=address)
    return subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture
def served(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--data-dir", str(tmp_path / "data"), "--port", "0",
         "--examples"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    address = None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on (\S+:\d+)", line)
        if m:
            address = m.group(1)
            break
    assert address, "server did not start:\n" + "".join(lines)
    yield proc, address, lines
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    proc.stdout.close()


def test_examples_are_deployed_and_invocable(served):
    proc, address, lines = served
    assert any("python-hello" in line for line in lines)
    out = run_cli(address, "list")
    assert out.returncode == 0 and "python-hello" in out.stdout and "python-memory_hog" in out.stdout
    inv = run_cli(address, "invoke", "python-hello", "--payload", '{"name": "cli"}')
    assert inv.returncode == 0
    assert json.loads(inv.stdout)["message"] == "Hello, cli!"


def test_deploy_directory_update_and_invoke_exit_codes(served, tmp_path):
    _, address, _ = served
    code = tmp_path / "fn"
    code.mkdir()
    (code / "main.py").write_text("import os\ndef go(e, c):\n    if e.get('fail'): raise ValueError('asked to fail')\n"
                                  "    return {'v': os.environ.get('V'), 'x': e.get('x')}\n")
    dep = run_cli(address, "deploy", "mine", "--runtime", "python3.11", "--handler", "main.go",
                  "--memory", "256", "--timeout", "5", "--env", "V=1", str(code))
    assert dep.returncode == 0, dep.stderr
    info = json.loads(dep.stdout)
    assert info["config"]["memory_mb"] == 256 and info["config"]["runtime"] == "python"

    ok = run_cli(address, "invoke", "mine", "--payload", '{"x": 1}', "--log-type", "Tail")
    assert ok.returncode == 0
    assert json.loads(ok.stdout) == {"v": "1", "x": 1}
    assert "REPORT RequestId:" in ok.stderr  # the tail goes to stderr

    payload = tmp_path / "event.json"
    payload.write_text('{"fail": true}')
    bad = run_cli(address, "invoke", "mine", "--payload-file", str(payload))
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["errorType"] == "ValueError"

    upd = run_cli(address, "deploy", "mine", "--env", "V=2")
    assert upd.returncode == 0, upd.stderr
    assert json.loads(run_cli(address, "invoke", "mine", "--payload", "{}").stdout)["v"] == "2"

    logs = run_cli(address, "logs", "mine", "-n", "4")
    assert logs.returncode == 0 and logs.stdout.splitlines()[-1].startswith("REPORT RequestId:")

    gone = run_cli(address, "invoke", "nothere")
    assert gone.returncode == 2 and "ResourceNotFoundException" in gone.stderr
    invalid = run_cli(address, "deploy", "x", "--runtime", "python", "--handler", "app.handler",
                      "--memory", "50", str(code))
    assert invalid.returncode == 2 and "memory_mb" in invalid.stderr

    dele = run_cli(address, "delete", "mine")
    assert dele.returncode == 0
    assert run_cli(address, "get", "mine").returncode == 2


def test_unreachable_server_is_a_platform_error():
    out = run_cli("127.0.0.1:1", "list", timeout=60)
    assert out.returncode == 2 and "runner:" in out.stderr


def test_sigterm_finishes_in_flight_invocations(served, tmp_path):
    proc, address, _ = served
    code = tmp_path / "slow"
    code.mkdir()
    (code / "app.py").write_text("import time\ndef handler(e, c):\n    time.sleep(1.5)\n    return 'finished'\n")
    assert run_cli(address, "deploy", "slow", "--runtime", "python", "--handler", "app.handler",
                   "--timeout", "5", str(code)).returncode == 0
    result = {}
    t = threading.Thread(target=lambda: result.update(out=run_cli(address, "invoke", "slow")))
    t.start()
    time.sleep(0.8)
    proc.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    assert result["out"].returncode == 0
    assert result["out"].stdout.strip() == '"finished"'
    assert proc.wait(timeout=30) == 0


def test_invoke_client_context_reaches_python_and_node(served, tmp_path):
    """`runner invoke --client-context` (the gRPC Invoke's client_context field) reaches the
    handler as the REST X-Amz-Client-Context header does; a malformed value is refused."""
    _, address, _ = served
    cc = {"client": {"installation_id": "inst-1"}, "custom": {"k": "v"}}
    encoded = base64.b64encode(json.dumps(cc).encode()).decode()
    py = tmp_path / "py"
    py.mkdir()
    (py / "app.py").write_text(
        "def handler(e, c):\n"
        "    cc = c.client_context\n"
        "    return {'custom': cc and cc.custom, 'inst': cc and cc.client.installation_id}\n")
    assert run_cli(address, "deploy", "ccpy", "--runtime", "python", "--handler", "app.handler",
                   str(py)).returncode == 0
    out = run_cli(address, "invoke", "ccpy", "--client-context", encoded)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"custom": {"k": "v"}, "inst": "inst-1"}
    assert json.loads(run_cli(address, "invoke", "ccpy").stdout) == {"custom": None, "inst": None}

    js = tmp_path / "js"
    js.mkdir()
    (js / "index.js").write_text("exports.handler = async (e, ctx) => ({cc: ctx.clientContext || null});\n")
    assert run_cli(address, "deploy", "ccjs", "--runtime", "nodejs20.x", "--handler", "index.handler",
                   str(js)).returncode == 0
    out = run_cli(address, "invoke", "ccjs", "--client-context", encoded)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"cc": cc}

    bad = run_cli(address, "invoke", "ccpy", "--client-context", "not base64 json!")
    assert bad.returncode == 2 and "client_context" in bad.stderr
