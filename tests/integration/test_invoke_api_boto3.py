"""The Lambda Invoke REST API driven by boto3's own Lambda client, unchanged: only
endpoint_url and dummy credentials differ from talking to AWS."""

from __future__ import annotations

import base64
import gzip
import json
import os
import threading

import grpc
import pytest

from runner.errors import TooManyRequests
from runner.service.proto import runner_api_pb2 as pb
from tests.async_helpers import RECORDER, records, wait_for
from tests.conftest import guest
from tests.integration.conftest import Client, error_type
from tests.integration.http_fixtures import hc, http_server, lam  # noqa: F401 (fixtures)

# The recorder guest writes into a host directory the test reads back.
pytestmark = pytest.mark.usefixtures("guests_see_host_files")

WEBAPP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guests", "webapp")




@pytest.fixture
def deployed(http_server):
    runner = http_server[0]
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    runner.deploy("raises", guest("python", "raises"), runtime="python", handler="app.handler")
    return runner


def test_request_response_payload(deployed, lam):
    resp = lam.invoke(FunctionName="echo", Payload=json.dumps({"a": [1, 2]}))
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"a": [1, 2]}


def test_log_tail(deployed, lam):
    resp = lam.invoke(FunctionName="raises", Payload=b'{"card": "4242"}', LogType="Tail")
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "about to fail" in tail
    assert f"END RequestId: {resp['ResponseMetadata']['RequestId']}" in tail
    assert "REPORT RequestId:" in tail


def test_function_error(deployed, lam):
    resp = lam.invoke(FunctionName="raises", Payload=b'{"card": "4242"}')
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    doc = json.loads(resp["Payload"].read())
    assert doc["errorType"] == "PaymentDeclined"
    assert doc["errorMessage"] == "card 4242 declined"
    assert isinstance(doc["stackTrace"], list)


def test_unknown_function(deployed, lam):
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.invoke(FunctionName="missing", Payload=b"{}")
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "missing" in err["Error"]["Message"]


def test_invalid_json(deployed, lam):
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as info:
        lam.invoke(FunctionName="echo", Payload=b"{nope")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "json" in info.value.response["Error"]["Message"]


def test_request_too_large(deployed, lam):
    big = json.dumps("x" * (6 * 1024 * 1024))
    with pytest.raises(lam.exceptions.RequestTooLargeException) as info:
        lam.invoke(FunctionName="echo", Payload=big)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_too_many_requests(http_server, lam):
    runner = http_server[0]
    runner.deploy("slow", WEBAPP, runtime="python", handler="app.handler", timeout_s=10,
                  concurrency=1)
    slow_event = {"requestContext": {"http": {"method": "POST"}}, "body": '{"sleep": 3}'}
    quick_event = {"requestContext": {"http": {"method": "GET"}}}
    lam.invoke(FunctionName="slow", Payload=json.dumps(quick_event))  # warm the environment
    done = threading.Event()

    def hold():
        # The holder may lose the race for the environment to the loop below: it tries until
        # it got the environment and slept in it.
        while True:
            try:
                runner.invoke("slow", json.dumps(slow_event))
                break
            except TooManyRequests:
                continue
        done.set()

    holder = threading.Thread(target=hold)
    holder.start()
    raised = None
    try:
        while not done.is_set() and raised is None:
            try:
                lam.invoke(FunctionName="slow", Payload=json.dumps(quick_event))
            except lam.exceptions.TooManyRequestsException as exc:
                raised = exc
    finally:
        holder.join()
    assert raised is not None
    assert raised.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert "concurrency" in raised.response["Error"]["Message"]


def test_dry_run(deployed, lam):
    assert lam.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="missing", InvocationType="DryRun")


def test_qualifier_and_arn(deployed, lam):
    deployed.publish("echo")
    resp = lam.invoke(FunctionName="echo", Qualifier="1", Payload=b"1")
    assert resp["ExecutedVersion"] == "1"
    arn = "arn:aws:lambda:us-east-1:000000000000:function:echo:1"
    assert lam.invoke(FunctionName=arn, Payload=b"2")["ExecutedVersion"] == "1"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="echo", Qualifier="9", Payload=b"1")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName="echo:1", Qualifier="2", Payload=b"1")


def test_event_invocation_runs(http_server, lam, tmp_path):
    runner = http_server[0]
    rec = tmp_path / "rec"
    rec.mkdir()
    runner.deploy("rec", RECORDER, runtime="python", handler="app.handler",
                  environment={"RECORD_DIR": str(rec)})
    resp = lam.invoke(FunctionName="rec", InvocationType="Event", Payload=b'{"via": "boto3"}')
    assert resp["StatusCode"] == 202
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["Payload"].read() == b""
    got = wait_for(lambda: records(str(rec), "rec"), "the event to run")
    assert got == [(rid, {"via": "boto3"})]


def test_event_invocation_over_grpc(http_server, tmp_path):
    runner, address, _ = http_server
    rec = tmp_path / "rec"
    rec.mkdir()
    runner.deploy("rec", RECORDER, runtime="python", handler="app.handler",
                  environment={"RECORD_DIR": str(rec)})
    client = Client(address)
    try:
        resp = client.invoke("rec", b'{"via": "grpc"}', invocation_type=pb.EVENT)
        assert resp.status_code == 202 and resp.request_id
        with pytest.raises(grpc.RpcError) as info:
            client.invoke("missing", b"{}", invocation_type=pb.EVENT)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        client.close()
    assert wait_for(lambda: records(str(rec), "rec"), "the event to run") == [
        (resp.request_id, {"via": "grpc"})]


def test_error_headers_for_plain_http_clients(deployed, hc):
    status, headers, body = hc.request("POST", "/2015-03-31/functions/missing/invocations", b"{}")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    doc = json.loads(body)
    assert doc["Type"] == "User" and "missing" in doc["message"]
    status, headers, _ = hc.request("POST", "/2015-03-31/functions/echo/invocations", b"{}",
                                    {"X-Amz-Invocation-Type": "Sometimes"})
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    status, _, _ = hc.request("GET", "/2015-03-31/functions/echo/invocations")
    assert status == 400


def test_event_payload_over_the_async_limit(deployed, lam):
    big = json.dumps("x" * (1024 * 1024))
    with pytest.raises(lam.exceptions.RequestTooLargeException):
        lam.invoke(FunctionName="echo", InvocationType="Event", Payload=big)
    assert deployed.events.pending() == 0


def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(deployed, hc):
    status, headers, body = hc.request("POST", "/2015-03-31/functions/echo/invocations",
                                       b'{"not": "gzip"}', {"Content-Encoding": "gzip"})
    assert status == 400, body
    assert headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert "Content-Encoding" in json.loads(body)["message"]
    hc.reconnect()  # the server closes a connection whose body it could not read
    # A real gzip body is decoded and invoked as usual.
    status, _, body = hc.request("POST", "/2015-03-31/functions/echo/invocations",
                                 gzip.compress(b'{"zipped": true}'), {"Content-Encoding": "gzip"})
    assert status == 200 and json.loads(body) == {"zipped": True}


@pytest.mark.parametrize("field, value", [("invocation_type", 3), ("invocation_type", 99),
                                          ("log_type", 7)])
def test_undefined_enum_values_over_grpc_are_refused(deployed, http_server, field, value):
    client = Client(http_server[1])
    try:
        with pytest.raises(grpc.RpcError) as e:
            client.invoke("echo", b"{}", **{field: value})
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_type(e.value) == "InvalidParameterValueException"
        assert field in e.value.details()
    finally:
        client.close()
