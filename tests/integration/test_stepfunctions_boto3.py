"""The Step Functions API driven by boto3's own `stepfunctions` client, unchanged but for
endpoint_url, dummy credentials and `inject_host_prefix=False` (StartSyncExecution's
`sync-` host prefix), against a real server whose Task states run real Python functions."""

from __future__ import annotations

import json
import os

import boto3
import botocore.session
import grpc
import pytest
from botocore.config import Config

from runner import Runner
from runner.service.grpc.server import build_server
from runner.service.http import HttpFront
from runner.service.proto import workflows_pb2 as wpb
from runner.service.proto import workflows_pb2_grpc as wpb_grpc
from runner.workflows.engine import WorkflowEngine
from tests.conftest import guest

ORDERS = guest("python", "orders")
with open(os.path.join(ORDERS, "orders.asl.json")) as f:
    DEFINITION = f.read()


@pytest.fixture
def server(tmp_path):
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    for fn in ("validate", "charge", "reserve"):
        runner.deploy(fn, ORDERS, runtime="python", handler=f"app.{fn}")
    engine = WorkflowEngine(runner.data_dir, runner.invoke)
    engine.start()
    srv, port = build_server(runner, "127.0.0.1", 0, workflows=engine)
    srv.start()
    front = HttpFront(runner, "127.0.0.1", 0, workflows=engine)
    front.start()
    yield engine, f"127.0.0.1:{port}", front.port
    front.stop()
    srv.stop(grace=1).wait()
    engine.close()
    runner.close()


@pytest.fixture
def sfn(server):
    client = boto3.client(
        "stepfunctions", endpoint_url=f"http://127.0.0.1:{server[2]}", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60,
                      inject_host_prefix=False))
    yield client
    client.close()


def wait(sfn, arn):
    import time

    for _ in range(600):
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running")


def test_life_cycle(sfn):
    arn = sfn.create_state_machine(name="orders", definition=DEFINITION,
                                   roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
    assert arn.endswith(":stateMachine:orders")
    assert sfn.describe_state_machine(stateMachineArn=arn)["definition"] == DEFINITION
    assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == ["orders"]
    order = {"items": [{"price": 30, "qty": 2}, {"price": 5}], "card": "4242"}
    ex = sfn.start_execution(stateMachineArn=arn, name="o1", input=json.dumps(order))
    # Start-by-name with the same input is idempotent.
    again = sfn.start_execution(stateMachineArn=arn, name="o1", input=json.dumps(order))
    assert again["executionArn"] == ex["executionArn"]
    d = wait(sfn, ex["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["result"] == {"charged": 65, "reserved": 3} and out["status"] == "shipped"
    declined = sfn.start_execution(stateMachineArn=arn, input=json.dumps({**order, "card": "0000"}))
    d = wait(sfn, declined["executionArn"])
    assert (d["status"], d["error"]) == ("FAILED", "OrderRejected") and "declined" in d["cause"]
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert {e["status"] for e in listed} == {"SUCCEEDED", "FAILED"}
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn,
                                                   statusFilter="FAILED")["executions"]] \
        == [declined["executionArn"].rsplit(":", 1)[1]]

    # History: paginated, reversible, event types botocore knows.
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=5,
                                         **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    types = [e["type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert "LambdaFunctionSucceeded" in types and "ParallelStateExited" in types
    known = set(botocore.session.get_session().get_service_model("stepfunctions")
                .shape_for("HistoryEventType").enum)
    assert set(types) <= known
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    rev = sfn.get_execution_history(executionArn=ex["executionArn"], reverseOrder=True,
                                    maxResults=2)["events"]
    assert [e["id"] for e in rev] == [len(events), len(events) - 1]
    entered = next(e for e in events if e["type"] == "TaskStateEntered")
    assert entered["stateEnteredEventDetails"]["name"] == "Validate"

    new = DEFINITION.replace('"shipped"', '"sent"')
    sfn.update_state_machine(stateMachineArn=arn, definition=new)
    d = wait(sfn, sfn.start_execution(stateMachineArn=arn, input=json.dumps(order))["executionArn"])
    assert json.loads(d["output"])["status"] == "sent"
    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=arn)


def test_stop_and_errors(sfn):
    wait_def = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60,
                                                            "End": True}}})
    arn = sfn.create_state_machine(name="waits", definition=wait_def, roleArn="r")["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    assert sfn.stop_execution(executionArn=ex, error="Manual", cause="test")["stopDate"]
    d = sfn.describe_execution(executionArn=ex)
    assert (d["status"], d["error"]) == ("ABORTED", "Manual")
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="n", input="{}")
        sfn.start_execution(stateMachineArn=arn, name="n", input='{"other": 1}')
    with pytest.raises(sfn.exceptions.InvalidDefinition) as info:
        sfn.create_state_machine(name="bad", roleArn="r", definition=json.dumps(
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
    assert "States.A.Next" in str(info.value)
    with pytest.raises(sfn.exceptions.StateMachineAlreadyExists):
        sfn.create_state_machine(name="waits", definition=wait_def.replace("60", "61"), roleArn="r")
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn=ex + "x")
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input="{nope")
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.list_executions(stateMachineArn=arn, nextToken="garbage")
    with pytest.raises(sfn.exceptions.StateMachineTypeNotSupported):
        sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    v = sfn.validate_state_machine_definition(definition='{"StartAt": "X", "States": {}}')
    assert v["result"] == "FAIL" and v["diagnostics"][0]["location"] == "States"
    assert sfn.validate_state_machine_definition(definition=wait_def)["result"] == "OK"


def test_express_sync(sfn):
    arn = sfn.create_state_machine(name="quick", definition=DEFINITION, roleArn="r",
                                   type="EXPRESS")["stateMachineArn"]
    r = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(
        {"items": [{"price": 200}], "card": "1"}))
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"])["status"] == "review"
    r = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"items": []}))
    assert (r["status"], r["error"]) == ("FAILED", "OrderRejected")


def test_a_traced_execution_runs_its_tasks_under_the_trace(sfn, server):
    """StartExecution's traceHeader (as the X-Ray SDK sends it) reaches every Task's
    invocation: their REPORT lines name it; DescribeExecution gives it back."""
    engine = server[0]
    runner = engine.invoke.__self__
    xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    arn = sfn.create_state_machine(name="traced", definition=DEFINITION,
                                   roleArn="r")["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, traceHeader=xray, input=json.dumps(
        {"items": [{"price": 20}], "card": "1"}))["executionArn"]
    done = wait(sfn, ex)
    assert done["status"] == "SUCCEEDED" and done["traceHeader"] == xray
    traced = [line for fn in ("validate", "charge", "reserve") for line in runner.read_logs(fn)
              if line.startswith("REPORT") and "XRAY TraceId: 1-5759e988-" in line]
    assert len(traced) >= 2, traced  # the order's Task states ran under the trace
    plain = sfn.start_execution(stateMachineArn=arn, traceHeader="not a trace header",
                                input=json.dumps({"items": []}))["executionArn"]
    assert "traceHeader" not in wait(sfn, plain)  # a malformed header is ignored
    # Without traceHeader in the body, the HTTP request's own trace header counts.
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{server[2]}/", method="POST",
        data=json.dumps({"stateMachineArn": arn, "input": json.dumps({"items": []})}).encode(),
        headers={"X-Amz-Target": "AWSStepFunctions.StartExecution",
                 "Content-Type": "application/x-amz-json-1.0",
                 "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        from_header = json.loads(resp.read())["executionArn"]
    assert wait(sfn, from_header)["traceHeader"] == (
        "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1")


def test_grpc_service(server):
    with grpc.insecure_channel(server[1]) as ch:
        stub = wpb_grpc.WorkflowsStub(ch)
        r = json.loads(stub.CreateStateMachine(wpb.JsonRequest(body=json.dumps(
            {"name": "g", "definition": DEFINITION, "type": "EXPRESS"}))).body)
        out = json.loads(stub.StartSyncExecution(wpb.JsonRequest(body=json.dumps(
            {"stateMachineArn": r["stateMachineArn"], "input": '{"items": [{"price": 1}]}'}))).body)
        assert out["status"] == "SUCCEEDED"
        with pytest.raises(grpc.RpcError) as info:
            stub.DescribeExecution(wpb.JsonRequest(body=json.dumps(
                {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:g:none"})))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert dict(info.value.trailing_metadata())["x-error-type"] == "ExecutionDoesNotExist"
