"""`runner serve --metrics-port` and `runner usage`, against a real server process: Prometheus
metrics on a port of their own (a gRPC-only server), the RPC counters, and the usage table
(issue 22)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

from tests.conftest import guest
from tests.integration.test_cli import run_cli
from tests.metrics_helpers import sample


def test_metrics_port_and_usage(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", "0", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        address = metrics_url = None
        lines = []
        deadline = time.monotonic() + 60
        while metrics_url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"listening on (\S+:\d+)", line):
                address = m.group(1)
            if m := re.search(r"metrics on (http://\S+)", line):
                metrics_url = m.group(1)
        assert address and metrics_url, "server did not start:\n" + "".join(lines)
        dep = run_cli(address, "deploy", "echo", "--runtime", "python", "--handler",
                      "app.handler", "--memory", "1024", guest("python", "echo"))
        assert dep.returncode == 0, dep.stderr
        for i in range(3):
            inv = run_cli(address, "invoke", "echo", "--payload", json.dumps({"i": i}))
            assert inv.returncode == 0, inv.stderr
        assert run_cli(address, "invoke", "nope").returncode == 2
        with urllib.request.urlopen(metrics_url, timeout=10) as resp:
            text = resp.read()
        assert sample(text, "lambda_invocations_total", function="echo", outcome="success") == 3
        assert sample(text, "runner_rpc_requests_total", method="Invoke", code="OK") == 3
        assert sample(text, "runner_rpc_requests_total", method="Invoke", code="NOT_FOUND") == 1
        assert sample(text, "runner_rpc_duration_seconds_count", method="Deploy") == 1
        out = run_cli(address, "usage", "--json")
        assert out.returncode == 0, out.stderr
        [row] = json.loads(out.stdout)
        assert row["function"] == "echo" and row["requests"] == 3
        assert row["day"] == time.strftime("%Y-%m-%d", time.gmtime())
        # 1024 MB = 1 GB: GB-seconds are the billed seconds, each invocation at least 1 ms.
        assert 0.003 <= row["gb_seconds"] < 3
        table = run_cli(address, "usage", "--since", "1d")
        assert table.returncode == 0 and "echo" in table.stdout and "GB-SECONDS" in table.stdout
        bad = run_cli(address, "usage", "--since", "soon")
        assert bad.returncode == 2 and "--since" in bad.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
