"""Trace context end to end (issue 22): X-Amzn-Trace-Id or W3C traceparent on HTTP and gRPC
reaches the guest as _X_AMZN_TRACE_ID, shows in the REPORT line, and goes with an
asynchronous event to its attempt."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from runner.service.proto import runner_api_pb2 as pb
from tests.integration.conftest import Client
from tests.integration.http_fixtures import Http, http_server  # noqa: F401 (fixtures)

W3C = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
INVOKE = "/2015-03-31/functions/{}/invocations"


@pytest.fixture
def traced(http_server, tmp_path):  # noqa: F811 (the fixture imported above)
    runner = http_server[0]
    py = tmp_path / "py"
    py.mkdir()
    (py / "app.py").write_text(
        "import os\ndef handler(e, c):\n    t = os.environ.get('_X_AMZN_TRACE_ID')\n"
        "    print('trace', t)\n    return t\n")
    runner.deploy("py", str(py), runtime="python", handler="app.handler")
    node = tmp_path / "node"
    node.mkdir()
    (node / "index.js").write_text(
        "exports.handler = async () => process.env._X_AMZN_TRACE_ID;\n")
    runner.deploy("node", str(node), runtime="nodejs", handler="index.handler")
    return http_server


@pytest.mark.parametrize("fn", ["py", "node"])
def test_http_traceparent_reaches_the_guest(traced, fn):
    runner, _, port = traced
    h = Http(port)
    try:
        status, hdrs, body = h.request("POST", INVOKE.format(fn), "{}", {"traceparent": W3C,
                                                                         "X-Amz-Log-Type": "Tail"})
        assert status == 200 and json.loads(body) == XRAY
        assert hdrs["X-Amzn-Trace-Id"] == XRAY
        # Untraced: the guest's own per-invocation value, as before.
        status, hdrs, body = h.request("POST", INVOKE.format(fn), "{}")
        assert json.loads(body) == f"Root={hdrs['x-amzn-RequestId']}"
    finally:
        h.close()
    report = [line for line in runner.read_logs(fn) if line.startswith("REPORT")]
    assert "XRAY TraceId: 1-4bf92f35-77b34da6a3ce929d0e0e4736" in report[-2]
    assert "XRAY" not in report[-1]


def test_grpc_metadata_and_async_events_carry_the_trace(traced):
    runner, address, _ = traced
    c = Client(address)
    try:
        own = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
        resp = c.invoker.Invoke(pb.InvokeRequest(name="py", payload=b"{}"),
                                metadata=[("x-amzn-trace-id", own)])
        assert json.loads(resp.payload) == own
        with pytest.raises(grpc.RpcError):  # a bad trace never fails the call: a bad name does
            c.invoker.Invoke(pb.InvokeRequest(name="nope"), metadata=[("traceparent", "x")])
        rid = c.invoker.Invoke(pb.InvokeRequest(name="py", payload=b"{}",
                                                invocation_type=pb.EVENT),
                               metadata=[("traceparent", W3C)]).request_id
    finally:
        c.close()
    deadline = time.monotonic() + 20
    while not any(f"REPORT RequestId: {rid}" in line for line in runner.read_logs("py")):
        assert time.monotonic() < deadline, "the event did not run"
        time.sleep(0.05)
    assert f"trace {XRAY}" in "\n".join(runner.read_logs("py"))
