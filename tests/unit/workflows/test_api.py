"""The Step Functions operations as documents (runner/workflows/api.py), below HTTP and gRPC."""

from __future__ import annotations

import json

import pytest

from runner.errors import InvalidParameter, InvalidToken, UnknownStepFunctionsOperation
from runner.workflows import api

PASS = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                                              "B": {"Type": "Pass", "End": True}}})


def test_pagination_of_machines(engine):
    for i in range(5):
        api.call(engine, "CreateStateMachine", {"name": f"m{i}", "definition": PASS})
    page = api.call(engine, "ListStateMachines", {"maxResults": 2})
    names = [m["name"] for m in page["stateMachines"]]
    while "nextToken" in page:
        page = api.call(engine, "ListStateMachines", {"maxResults": 2,
                                                      "nextToken": page["nextToken"]})
        names += [m["name"] for m in page["stateMachines"]]
    assert names == [f"m{i}" for i in range(5)]
    with pytest.raises(InvalidParameter):
        api.call(engine, "ListStateMachines", {"maxResults": 5000})
    with pytest.raises(InvalidToken):
        api.call(engine, "ListStateMachines", {"nextToken": "x"})


def test_history_pages_backwards_and_without_data(engine):
    arn = api.call(engine, "CreateStateMachine", {"name": "m", "definition": PASS})["stateMachineArn"]
    ex = api.call(engine, "StartExecution", {"stateMachineArn": arn, "input": '{"secret": 1}'})
    engine.wait(ex["executionArn"])
    ids, token = [], None
    while True:
        body = {"executionArn": ex["executionArn"], "reverseOrder": True, "maxResults": 2}
        if token:
            body["nextToken"] = token
        page = api.call(engine, "GetExecutionHistory", body)
        ids += [e["id"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert ids == list(range(len(ids), 0, -1)) and len(ids) >= 6
    lean = api.call(engine, "GetExecutionHistory", {"executionArn": ex["executionArn"],
                                                    "includeExecutionData": False})
    assert "secret" not in json.dumps(lean)
    first = lean["events"][0]
    assert first["type"] == "ExecutionStarted" and "executionStartedEventDetails" in first


def test_express_async_execution(engine):
    wait = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30,
                                                        "End": True}}})
    arn = api.call(engine, "CreateStateMachine", {"name": "x", "definition": wait,
                                                  "type": "EXPRESS"})["stateMachineArn"]
    ex = api.call(engine, "StartExecution", {"stateMachineArn": arn})["executionArn"]
    assert ":express:x:" in ex
    assert api.call(engine, "DescribeExecution", {"executionArn": ex})["status"] == "RUNNING"
    api.call(engine, "StopExecution", {"executionArn": ex})
    assert engine.wait(ex, 5).status == "ABORTED"
    listed = api.call(engine, "ListExecutions", {"stateMachineArn": arn})["executions"]
    assert [e["status"] for e in listed] == ["ABORTED"]


def test_unknown_operation_and_validation(engine):
    with pytest.raises(UnknownStepFunctionsOperation):
        api.call(engine, "TagResource", {})
    ok = api.call(engine, "ValidateStateMachineDefinition", {"definition": PASS})
    assert ok["result"] == "OK"
    bad = api.call(engine, "ValidateStateMachineDefinition", {"definition": PASS.replace(
        '"Next": "B"', '"Next": "C"')})
    assert bad["result"] == "FAIL" and bad["diagnostics"][0]["location"] == "States.A.Next"
