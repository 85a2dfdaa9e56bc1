"""Logs streaming, the standard health service and server reflection."""

from __future__ import annotations

import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.conftest import guest


def test_logs_are_framed_like_lambda(client):
    client.deploy("hello", zip_directory(guest("python", "hello")), runtime="python", handler="app.handler")
    rid = client.invoke("hello", b'{"name": "log"}').request_id
    lines = [m.line for m in client.invoker.GetLogs(pb.GetLogsRequest(name="hello"))]
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert lines[start + 1] == "saying hello to log"
    assert lines[start + 2] == f"END RequestId: {rid}"
    report = lines[start + 3]
    assert report.startswith(f"REPORT RequestId: {rid}\tDuration: ")
    for field in ("Billed Duration: ", "Memory Size: 128 MB", "Max Memory Used: ", "Init Duration: "):
        assert field in report


def test_python_logging_output_is_captured(client):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "import logging, sys\nlog = logging.getLogger()\nlog.setLevel(logging.INFO)\n"
                    "def handler(e, c):\n    log.info('via logging')\n    print('to stderr', file=sys.stderr)\n    return 1\n")
    client.deploy("lg", buf.getvalue(), runtime="python", handler="app.handler")
    resp = client.invoke("lg", b"{}", log_type=pb.LOG_TYPE_TAIL)
    tail = resp.log_result.decode()
    assert "[INFO]\t" in tail and f"\t{resp.request_id}\tvia logging" in tail
    assert "to stderr" in tail


def test_logs_follow_streams_new_invocations(client):
    client.deploy("hello", zip_directory(guest("python", "hello")), runtime="python", handler="app.handler")
    stream = client.invoker.GetLogs(pb.GetLogsRequest(name="hello", follow=True))
    seen = []

    def read():
        for m in stream:
            seen.append(m.line)
            if m.line.startswith("REPORT"):
                return

    t = threading.Thread(target=read)
    t.start()
    time.sleep(0.3)
    rid = client.invoke("hello", b"{}").request_id
    t.join(timeout=10)
    stream.cancel()
    assert f"END RequestId: {rid}" in seen


def test_logs_of_unknown_function(client):
    try:
        list(client.invoker.GetLogs(pb.GetLogsRequest(name="ghost")))
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
    else:
        raise AssertionError("expected NOT_FOUND")


def test_health_service_reports_serving(client):
    stub = health_pb2_grpc.HealthStub(client.channel)
    for service in ("", "runner.v1.Invoker", "runner.v1.Functions"):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_our_services(client):
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"runner.v1.Invoker", "runner.v1.Functions", "grpc.health.v1.Health"} <= names
