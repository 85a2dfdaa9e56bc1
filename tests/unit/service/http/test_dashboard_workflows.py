"""The dashboard's workflow views (service/http/dashboard_workflows.py) on a real engine whose
Task states call Python functions in this process: each state's outcome as the execution's
history tells it, the graph's nodes and edges, and a dashboard without an engine."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from runner.errors import ExecutionDoesNotExist, ResourceNotFound
from runner.service.http import dashboard_workflows as dw
from runner.workflows.engine import WorkflowEngine


class Functions:
    """name -> handler(event); a handler raising is a function error (errorType = the
    exception's class name), as the runtime reports one."""

    def __init__(self) -> None:
        self.handlers = {}

    def __call__(self, name, payload, qualifier=None):
        try:
            out = self.handlers[name](json.loads(payload))
        except Exception as exc:  # noqa: BLE001 - the function's error, as a runtime reports it
            doc = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            return SimpleNamespace(payload=json.dumps(doc).encode(), function_error="Unhandled",
                                   executed_version="$LATEST", request_id="rid")
        return SimpleNamespace(payload=json.dumps(out).encode(), function_error=None,
                               executed_version="$LATEST", request_id="rid")


class Declined(Exception):
    pass


@pytest.fixture
def functions():
    f = Functions()
    f.handlers["ok"] = lambda e: {**e, "charged": True}

    def declined(e):
        raise Declined("card declined")
    f.handlers["declined"] = declined
    return f


@pytest.fixture
def engine(tmp_path, functions):
    e = WorkflowEngine(str(tmp_path), functions)
    yield e
    e.close()


def _run(engine, name: str, definition: dict, value=None, execution: str = "x1"):
    engine.create_machine(name, json.dumps(definition))
    ex = engine.start_execution(name, execution, json.dumps(value or {}))
    engine.wait(ex.arn, 30)
    return dw.execution(engine, name, execution)


def _outcomes(doc) -> dict[str, str]:
    return {n["name"]: n["outcome"] for n in doc["graph"]["nodes"]}


PIPELINE = {"StartAt": "Prepare", "States": {
    "Prepare": {"Type": "Pass", "Result": {"card": 1}, "Next": "Charge"},
    "Charge": {"Type": "Task", "Resource": "ok", "Next": "Done"},
    "Done": {"Type": "Succeed"}}}


def test_a_succeeded_execution_has_every_state_succeeded(engine):
    doc = _run(engine, "pipeline", PIPELINE)
    assert doc["status"] == "SUCCEEDED" and doc["stop"] >= doc["start"]
    assert _outcomes(doc) == {"Prepare": "succeeded", "Charge": "succeeded", "Done": "succeeded"}
    assert json.loads(doc["output"]) == {"card": 1, "charged": True}
    assert [e["type"] for e in doc["events"]][:2] == ["ExecutionStarted", "PassStateEntered"]
    assert {e["state"] for e in doc["events"]} >= {"Prepare", "Charge", "Done"}


def test_an_uncaught_task_failure_marks_that_state_failed_and_the_rest_not_reached(engine):
    definition = json.loads(json.dumps(PIPELINE))
    definition["States"]["Charge"]["Resource"] = "declined"
    doc = _run(engine, "pipeline", definition)
    assert doc["status"] == "FAILED" and doc["error"] == "Declined"
    assert _outcomes(doc) == {"Prepare": "succeeded", "Charge": "failed", "Done": "not_reached"}
    charge = next(n for n in doc["graph"]["nodes"] if n["name"] == "Charge")
    assert charge["error"] == "Declined" and "card declined" in charge["cause"]
    assert charge["entered"] == 1


def test_a_caught_failure_and_a_fail_state(engine):
    doc = _run(engine, "caught", {"StartAt": "Charge", "States": {
        "Charge": {"Type": "Task", "Resource": "declined", "Next": "Done",
                   "Catch": [{"ErrorEquals": ["Declined"], "Next": "Refuse"}]},
        "Done": {"Type": "Succeed"},
        "Refuse": {"Type": "Fail", "Error": "Refused", "Cause": "no payment"}}})
    assert doc["status"] == "FAILED" and doc["error"] == "Refused"
    assert _outcomes(doc) == {"Charge": "caught", "Done": "not_reached", "Refuse": "failed"}


def test_a_retry_that_succeeds_leaves_the_state_succeeded(engine, functions, monkeypatch):
    from runner.workflows import interpreter

    monkeypatch.setattr(interpreter, "retry_delay", lambda r, n: 0.0)  # no 1 s wait
    calls = []

    def flaky(e):
        calls.append(e)
        if len(calls) == 1:
            raise Declined("once")
        return e
    functions.handlers["flaky"] = flaky
    doc = _run(engine, "retry", {"StartAt": "Charge", "States": {"Charge": {
        "Type": "Task", "Resource": "flaky", "End": True,
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]}}})
    assert len(calls) == 2 and doc["status"] == "SUCCEEDED"
    assert _outcomes(doc) == {"Charge": "succeeded"}
    assert doc["graph"]["nodes"][0]["error"] is None


def test_running_then_aborted(engine):
    engine.create_machine("slow", json.dumps({"StartAt": "First", "States": {
        "First": {"Type": "Pass", "Next": "Sleep"},
        "Sleep": {"Type": "Wait", "Seconds": 60, "Next": "After"},
        "After": {"Type": "Succeed"}}}))
    ex = engine.start_execution("slow", "x1", "{}")
    deadline = time.monotonic() + 10
    while _outcomes(dw.execution(engine, "slow", "x1")).get("Sleep") != "running":
        assert time.monotonic() < deadline, "the Wait state was never entered"
        time.sleep(0.02)
    doc = dw.execution(engine, "slow", "x1")
    assert doc["status"] == "RUNNING" and doc["stop"] is None
    assert _outcomes(doc) == {"First": "succeeded", "Sleep": "running", "After": "not_reached"}
    engine.stop_execution(ex.arn)
    assert _outcomes(dw.execution(engine, "slow", "x1"))["Sleep"] == "aborted"


def test_the_graph_keeps_the_definition_order_and_every_kind_of_edge():
    g = dw.graph({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericEquals": 1, "Next": "One"}], "Default": "Many"},
        "Many": {"Type": "Parallel", "Next": "One", "Branches": [
            {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "End": True}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}]},
        "One": {"Type": "Pass", "End": True},
        "Oops": {"Type": "Fail"}}})
    assert g["start"] == "Check"
    assert [n["name"] for n in g["nodes"]] == ["Check", "Many", "One", "Oops"]
    assert [n["end"] for n in g["nodes"]] == [False, False, True, True]
    assert g["nodes"][1]["inner"] == ["B1"]
    assert [(e["from"], e["to"], e["kind"]) for e in g["edges"]] == [
        ("Check", "One", "choice"), ("Check", "Many", "default"),
        ("Many", "One", "next"), ("Many", "Oops", "catch")]
    assert g["edges"][3]["label"] == "catch States.ALL"


def test_machines_count_executions_by_status(engine):
    _run(engine, "pipeline", PIPELINE, execution="good")
    engine.start_execution("pipeline", "also-good", "{}")
    engine.wait(engine.list_executions("pipeline")[0].arn, 30)
    failing = json.loads(json.dumps(PIPELINE))
    failing["States"]["Charge"]["Resource"] = "declined"
    _run(engine, "failing", failing, execution="bad")
    doc = dw.machines(engine)
    by = {m["name"]: m for m in doc["machines"]}
    assert doc["configured"] is True and set(by) == {"pipeline", "failing"}
    assert by["pipeline"]["counts"]["SUCCEEDED"] == 2 and by["pipeline"]["executions"] == 2
    assert by["failing"]["counts"] == {"RUNNING": 0, "SUCCEEDED": 0, "FAILED": 1,
                                       "TIMED_OUT": 0, "ABORTED": 0}
    page = dw.machine(engine, "failing")
    assert [x["name"] for x in page["executions"]] == ["bad"]
    assert page["executions"][0]["status"] == "FAILED"
    assert [n["name"] for n in page["graph"]["nodes"]] == ["Prepare", "Charge", "Done"]
    assert json.loads(page["definition"]) == failing


def test_express_executions_are_found_by_name(engine):
    engine.create_machine("quick", json.dumps(PIPELINE), "EXPRESS")
    engine.start_execution("quick", "e1", "{}", sync=True)
    doc = dw.execution(engine, "quick", "e1")
    assert doc["status"] == "SUCCEEDED" and _outcomes(doc)["Done"] == "succeeded"
    with pytest.raises(ExecutionDoesNotExist, match="express"):
        dw.execution(engine, "quick", "nope")


def test_without_an_engine_the_views_say_none_are_configured():
    assert dw.machines(None) == {"configured": False, "machines": []}
    with pytest.raises(ResourceNotFound, match="no workflows configured"):
        dw.machine(None, "any")
    with pytest.raises(ResourceNotFound, match="no workflows configured"):
        dw.execution(None, "any", "x")
