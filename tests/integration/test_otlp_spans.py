"""OTLP export of invocation spans (invocation/spans.py, issue 22): with RUNNER_OTLP_ENDPOINT
set, an invocation's `invoke` span (and `init` on a cold start) reaches a collector over
OTLP/HTTP under the caller's trace, and an asynchronous event's `queue wait` too. The
collector here is a real HTTP server on loopback decoding the protobuf requests."""

from __future__ import annotations

import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from runner import Runner
from tests.conftest import guest

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
XRAY = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"


@pytest.fixture
def collector(stub_http):
    spans: list = []

    def respond(req):
        body = req.rfile.read(int(req.headers["Content-Length"]))
        if req.path == "/v1/traces":
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
                for ss in rs.scope_spans:
                    spans.extend(ss.spans)
        return 200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString()

    return stub_http(respond), spans


def test_spans_reach_the_collector_under_the_callers_trace(tmp_path, monkeypatch, collector):
    endpoint, spans = collector
    monkeypatch.setenv("RUNNER_OTLP_ENDPOINT", endpoint)
    with Runner(str(tmp_path / "data"), async_retry_base_s=0.05) as r:
        assert r.spans is not None and r.spans.endpoint == endpoint + "/v1/traces"
        r.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
        cold = r.invoke("echo", b"{}", trace_id=XRAY)
        warm = r.invoke("echo", b"{}")
        rid = r.invoke_async("echo", b"{}", trace_id=XRAY)
        deadline = time.monotonic() + 20
        while not any(f"REPORT RequestId: {rid}" in line for line in r.read_logs("echo")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # close() exported what was buffered.
    by_name: dict[str, list] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    invokes = {next(a.value.string_value for a in s.attributes if a.key == "faas.invocation_id"): s
               for s in by_name["invoke echo"]}
    assert set(invokes) == {cold.request_id, warm.request_id, rid}
    traced = invokes[cold.request_id]
    assert traced.trace_id.hex() == W3C_TRACE and traced.parent_span_id.hex() == "00f067aa0ba902b7"
    assert invokes[warm.request_id].trace_id.hex() != W3C_TRACE  # untraced: a trace of its own
    assert invokes[rid].trace_id.hex() == W3C_TRACE  # the event kept its caller's trace
    [init] = by_name["init"]
    assert init.parent_span_id == traced.span_id and init.end_time_unix_nano > init.start_time_unix_nano
    [wait] = by_name["queue wait echo"]
    assert wait.trace_id.hex() == W3C_TRACE and wait.end_time_unix_nano >= wait.start_time_unix_nano


def test_no_endpoint_no_exporter(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNNER_OTLP_ENDPOINT", raising=False)
    with Runner(str(tmp_path / "data")) as r:
        assert r.spans is None
