"""`runner workflow ...` against a real `runner serve`: the README's three-function example
(validate -> Parallel(charge, reserve) -> Choice) created, started and inspected."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import guest
from tests.integration.test_cli import run_cli

ORDERS = guest("python", "orders")
DEFINITION = f"{ORDERS}/orders.asl.json"


@pytest.fixture
def address(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "runner", "serve", "--data-dir",
                             str(tmp_path / "data"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+:\d+)", line)
    assert m, line
    yield m.group(1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    proc.stdout.close()


def ok(address, *args) -> str:
    r = run_cli(address, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_orders_example(address):
    for fn in ("validate", "charge", "reserve"):
        ok(address, "deploy", fn, ORDERS, "--runtime", "python", "--handler", f"app.{fn}")
    ok(address, "workflow", "create", "orders", "--definition", DEFINITION)
    order = json.dumps({"items": [{"price": 30, "qty": 2}], "card": "4242"})
    started = json.loads(ok(address, "workflow", "start", "orders", "--name", "o1",
                            "--input", order))
    assert started["executionArn"].endswith(":execution:orders:o1")
    for _ in range(300):
        r = run_cli(address, "workflow", "describe", "orders:o1")
        if json.loads(r.stdout)["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert r.returncode == 0 and json.loads(json.loads(r.stdout)["output"])["status"] == "shipped"
    history = ok(address, "workflow", "history", "orders:o1")
    assert "ParallelStateEntered" in history and "ExecutionSucceeded" in history
    assert "SUCCEEDED" in ok(address, "workflow", "list", "orders")
    assert "orders" in ok(address, "workflow", "list")

    ok(address, "workflow", "create", "quick", "--definition", DEFINITION, "--type", "express")
    r = run_cli(address, "workflow", "start", "quick", "--sync", "--input",
                json.dumps({"items": [{"price": 1}], "card": "0000"}))
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "OrderRejected"

    r = run_cli(address, "workflow", "describe", "orders:nope")
    assert r.returncode == 2 and "ExecutionDoesNotExist" in r.stderr
    wait = '{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}'
    r = subprocess.run([sys.executable, "-m", "runner", "workflow", "create", "w", "--definition",
                        "-", "--address", address], input=wait, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ok(address, "workflow", "start", "w", "--name", "x")
    ok(address, "workflow", "stop", "w:x", "--error", "Manual")
    assert json.loads(run_cli(address, "workflow", "describe", "w:x").stdout)["status"] == "ABORTED"
