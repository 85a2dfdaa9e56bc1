"""GET /metrics and the dashboard's JSON API on a real server with real (Python) functions,
through a real HTTP client (issue 22)."""

from __future__ import annotations

import json
import time
from http.client import HTTPConnection

import pytest

from runner.confinement import limits
from tests.conftest import guest
from tests.integration.http_fixtures import Http, http_server  # noqa: F401 (fixtures)
from tests.metrics_helpers import sample

INVOKE = "/2015-03-31/functions/{}/invocations"


@pytest.fixture
def srv(http_server):  # noqa: F811 (the fixture imported above)
    return http_server


def _traffic(runner, port, n_ok: int, k_fail: int) -> None:
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    runner.deploy("raises", guest("python", "raises"), runtime="python", handler="app.handler")
    h = Http(port)
    try:
        for i in range(n_ok):
            status, _, _ = h.request("POST", INVOKE.format("echo"), json.dumps({"i": i}))
            assert status == 200
        for _ in range(k_fail):
            status, hdrs, _ = h.request("POST", INVOKE.format("raises"), "{}")
            assert status == 200 and hdrs["X-Amz-Function-Error"] == "Unhandled"
    finally:
        h.close()


def test_metrics_count_the_traffic_exactly(srv):
    runner, _, port = srv
    _traffic(runner, port, n_ok=6, k_fail=2)
    h = Http(port)
    try:
        status, hdrs, body = h.request("GET", "/metrics")
    finally:
        h.close()
    assert status == 200 and hdrs["Content-Type"].startswith("text/plain; version=")
    assert sample(body, "lambda_invocations_total", function="echo", version="$LATEST",
                  outcome="success") == 6
    assert sample(body, "lambda_invocations_total", function="raises", outcome="function_error") == 2
    assert sample(body, "lambda_errors_total", function="raises") == 2
    assert sample(body, "lambda_errors_total", function="echo") == 0
    assert sample(body, "lambda_duration_seconds_count", function="echo") == 6
    assert sample(body, "lambda_cold_starts_total", function="echo") == 1
    assert sample(body, "runner_http_requests_total", kind="invoke_api", status="200") == 8
    assert sample(body, "lambda_environments", function="echo", state="idle") == 1
    if limits.cgroup_layout() is not None:  # the environments' cgroups hold their memory
        assert sample(body, "runner_environments_memory_bytes") > 1 << 20
    else:
        assert "runner_environments_memory_bytes" not in body.decode()


def test_the_dashboard_api_agrees_with_the_metrics(srv):
    runner, _, port = srv
    _traffic(runner, port, n_ok=5, k_fail=3)
    h = Http(port)
    try:
        status, _, doc = h.json("GET", "/ui/api/functions")
        assert status == 200
        by = {f["name"]: f for f in doc["functions"]}
        assert (by["echo"]["invocations"], by["echo"]["errors"]) == (5, 0)
        assert (by["raises"]["invocations"], by["raises"]["errors"]) == (3, 3)
        assert by["echo"]["cold_start_share"] == 0.2 and by["echo"]["p50_ms"] > 0
        assert sum(by["echo"]["sparkline"]) == 5 and len(by["echo"]["sparkline"]) == 60
        status, _, fn = h.json("GET", "/ui/api/functions/echo?window=86400")
        assert status == 200 and fn["config"]["runtime"] == "python"
        assert len(fn["series"]) == 1440 and sum(p["invocations"] for p in fn["series"]) == 5
        status, _, res = h.json("POST", "/ui/api/functions/echo/invoke", '{"from": "ui"}')
        assert status == 200 and json.loads(res["payload"]) == {"from": "ui"}
        assert "REPORT RequestId" in res["log"]
        status, _, logs = h.json("GET", "/ui/api/functions/echo/logs?lines=3")
        assert status == 200 and logs["lines"][-1].startswith("REPORT")
        status, _, usage = h.json("GET", "/ui/api/usage")
        assert {d["function"]: d["requests"] for d in usage["days"]} == {"echo": 6, "raises": 3}
        status, _, err = h.json("GET", "/ui/api/functions/nope")
        assert status == 404 and "nope" in err["message"]
        status, hdrs, page = h.request("GET", "/ui/")
        assert status == 200 and b"uPlot.iife.min.js" in page
        status, _, _ = h.request("GET", "/ui/static/../../server.py")
        assert status == 404
    finally:
        h.close()


def test_the_live_tail_streams_new_log_lines(srv):
    runner, _, port = srv
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/ui/api/functions/echo/logs/stream")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        time.sleep(0.3)  # the follower is registered before the invocation writes
        rid = runner.invoke("echo", b'{"x": 1}').request_id
        seen = b""
        deadline = time.monotonic() + 10
        while f"REPORT RequestId: {rid}".encode() not in seen:
            assert time.monotonic() < deadline, seen
            seen += resp.fp.readline()
    finally:
        conn.close()
