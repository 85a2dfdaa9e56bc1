"""The interpreter, state type by state type, through the engine (Standard executions on a
real SQLite store) with Task states served by in-process handlers (conftest.py)."""

from __future__ import annotations

import time

import pytest

from runner.workflows import interpreter
from tests.unit.workflows.conftest import FunctionFails, run


@pytest.fixture
def fast_retries(monkeypatch):
    """Retry delays at 1/100 of their length (the delays themselves: test_retry_delays)."""
    real = interpreter.retry_delay
    monkeypatch.setattr(interpreter, "retry_delay", lambda r, n: real(r, n) / 100)


def chain(*states, **extra):
    names = [s.pop("Name") for s in states]
    out = {}
    for i, (n, s) in enumerate(zip(names, states)):
        if s["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in s and "End" not in s:
            if i + 1 < len(names):
                s["Next"] = names[i + 1]
            else:
                s["End"] = True
        out[n] = s
    return {"StartAt": names[0], "States": out, **extra}


def test_pass_data_flow(engine):
    d = chain({"Name": "A", "Type": "Pass", "InputPath": "$.in",
               "Parameters": {"x.$": "$.a", "ctx.$": "$$.State.Name", "lit": [1, {"k": "v"}]},
               "ResultPath": "$.out.r", "OutputPath": "$.out"})
    assert run(engine, d, {"in": {"a": 5}}) == ("SUCCEEDED", {"r": {"x": 5, "ctx": "A",
                                                                    "lit": [1, {"k": "v"}]}})


def test_result_path_null_keeps_input_and_result_literal(engine):
    d = chain({"Name": "A", "Type": "Pass", "Result": {"z": 1}, "ResultPath": None},
              {"Name": "B", "Type": "Pass", "Result": {"z": 2}, "ResultPath": "$.b"})
    assert run(engine, d, {"a": 1}) == ("SUCCEEDED", {"a": 1, "b": {"z": 2}})


def test_input_and_output_path_null(engine):
    d = chain({"Name": "A", "Type": "Pass", "InputPath": None, "ResultPath": "$.x"},
              {"Name": "B", "Type": "Pass", "OutputPath": None})
    assert run(engine, d, {"a": 1}) == ("SUCCEEDED", {})


def test_missing_path_fails_with_states_runtime(engine):
    d = chain({"Name": "A", "Type": "Pass", "InputPath": "$.nope"})
    status, (error, cause) = run(engine, d, {"a": 1})
    assert (status, error) == ("FAILED", "States.Runtime") and "$.nope" in cause


def test_task_by_name_arn_and_lambda_invoke(engine, functions):
    functions.handlers["double"] = lambda e: {"v": e["v"] * 2}
    d = chain({"Name": "A", "Type": "Task", "Resource": "double"},
              {"Name": "B", "Type": "Task",
               "Resource": "arn:aws:lambda:us-east-1:123456789012:function:double:live"},
              {"Name": "C", "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "double", "Payload.$": "$"},
               "ResultSelector": {"v.$": "$.Payload.v", "code.$": "$.StatusCode"}})
    assert run(engine, d, {"v": 1}) == ("SUCCEEDED", {"v": 8, "code": 200})
    assert [c[0] for c in functions.calls] == ["double"] * 3


def test_function_error_surfaces_as_error_type_and_is_caught(engine, functions):
    def fail(e):
        raise FunctionFails("OrderRejected", "no stock")
    functions.handlers["f"] = fail
    d = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "f", "Catch": [
            {"ErrorEquals": ["Other"], "Next": "Wrong"},
            {"ErrorEquals": ["OrderRejected"], "ResultPath": "$.err", "Next": "Done"}],
              "End": True},
        "Wrong": {"Type": "Fail", "Error": "wrong"},
        "Done": {"Type": "Pass", "End": True}}}
    status, out = run(engine, d, {"id": 1})
    assert status == "SUCCEEDED" and out["id"] == 1 and out["err"]["Error"] == "OrderRejected"
    assert "no stock" in out["err"]["Cause"]


def test_unknown_function_is_lambda_resource_not_found(engine):
    d = chain({"Name": "T", "Type": "Task", "Resource": "ghost"})
    status, (error, _) = run(engine, d)
    assert (status, error) == ("FAILED", "Lambda.ResourceNotFoundException")


def test_retry_then_success_counts_attempts(engine, functions, fast_retries):
    attempts = []

    def flaky(e):
        attempts.append(1)
        if len(attempts) < 3:
            raise FunctionFails("Flaky")
        return {"ok": len(attempts)}
    functions.handlers["flaky"] = flaky
    d = chain({"Name": "T", "Type": "Task", "Resource": "flaky", "Retry": [
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2}]})
    assert run(engine, d) == ("SUCCEEDED", {"ok": 3})


def test_retry_exhausted_fails(engine, functions, fast_retries):
    def fail(e):
        raise FunctionFails("Boom")
    functions.handlers["f"] = fail
    d = chain({"Name": "T", "Type": "Task", "Resource": "f", "Retry": [
        {"ErrorEquals": ["Boom"], "MaxAttempts": 2}, {"ErrorEquals": ["States.ALL"]}]})
    status, (error, _) = run(engine, d)
    assert (status, error) == ("FAILED", "Boom")
    assert len(functions.calls) == 3  # the first matching retrier alone decides


def test_states_all_does_not_catch_states_runtime(engine):
    d = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "InputPath": "$.missing", "End": True}}}
    assert run(engine, d)[1][0] == "States.Runtime"
    assert interpreter.error_matches(["States.ALL"], "States.Runtime") is False
    assert interpreter.error_matches(["States.TaskFailed"], "States.Timeout") is False
    assert interpreter.error_matches(["States.TaskFailed"], "Any") is True


def test_task_timeout(engine, functions):
    functions.handlers["slow"] = lambda e: time.sleep(1.5) or {}
    d = chain({"Name": "T", "Type": "Task", "Resource": "slow", "TimeoutSeconds": 1,
               "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "C"}]},
              {"Name": "C", "Type": "Pass", "Result": "timed out"})
    assert run(engine, d) == ("SUCCEEDED", "timed out")


def test_fail_state_error_and_cause_paths(engine):
    d = {"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}}
    assert run(engine, d, {"e": "E1", "c": "because"}) == ("FAILED", ("E1", "because"))


def test_choice_no_match_fails(engine):
    d = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": 1, "Next": "S"}]},
        "S": {"Type": "Succeed"}}}
    assert run(engine, d, {"a": 2})[1][0] == "States.NoChoiceMatched"
    assert run(engine, d, {"a": 1}, name="m2") == ("SUCCEEDED", {"a": 1})


def test_wait_seconds_path_and_timestamp(engine):
    d = chain({"Name": "W", "Type": "Wait", "SecondsPath": "$.s"},
              {"Name": "W2", "Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z"})
    t = time.monotonic()
    assert run(engine, d, {"s": 1}) == ("SUCCEEDED", {"s": 1})
    assert 0.9 < time.monotonic() - t < 5


def test_parallel_results_in_branch_order_and_failure(engine, functions):
    functions.handlers["slow"] = lambda e: time.sleep(0.2) or "slow"
    branch = lambda s, n: {"StartAt": n, "States": {n: s}}  # noqa: E731
    d = chain({"Name": "P", "Type": "Parallel", "Branches": [
        branch({"Type": "Task", "Resource": "slow", "End": True}, "X1"),
        branch({"Type": "Pass", "Result": "fast", "End": True}, "X2")]})
    assert run(engine, d) == ("SUCCEEDED", ["slow", "fast"])
    d2 = chain({"Name": "P", "Type": "Parallel", "Branches": [
        branch({"Type": "Fail", "Error": "BranchBroke"}, "X1"),
        branch({"Type": "Pass", "End": True}, "X2")],
        "Catch": [{"ErrorEquals": ["BranchBroke"], "Next": "C"}]},
        {"Name": "C", "Type": "Pass", "Result": "caught"})
    assert run(engine, d2, name="m2") == ("SUCCEEDED", "caught")


def test_map_item_selector_concurrency_and_order(engine, functions):
    running, peak = [0], [0]

    def work(e):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        running[0] -= 1
        return e["i"] * 10 + e["v"]
    functions.handlers["work"] = work
    d = chain({"Name": "M", "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
               "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
               "ItemProcessor": {"StartAt": "T", "States": {
                   "T": {"Type": "Task", "Resource": "work", "End": True}}},
               "ResultPath": "$.out"})
    status, out = run(engine, d, {"items": [1, 2, 3, 4, 5]})
    assert status == "SUCCEEDED" and out["out"] == [1, 12, 23, 34, 45]
    assert peak[0] <= 2


def test_map_tolerated_failures(engine):
    proc = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 2,
                                             "Next": "F"}], "Default": "S"},
        "F": {"Type": "Fail", "Error": "TooBig"}, "S": {"Type": "Succeed"}}}
    ok = chain({"Name": "M", "Type": "Map", "ItemProcessor": proc, "ToleratedFailureCount": 2})
    status, out = run(engine, ok, [1, 2, 3, 4])
    assert status == "SUCCEEDED" and out[:2] == [1, 2] and out[2]["Error"] == "TooBig"
    bad = chain({"Name": "M", "Type": "Map", "ItemProcessor": proc,
                 "ToleratedFailurePercentage": 25})
    assert run(engine, bad, [1, 2, 3, 4], name="m2")[1][0] == "States.ExceedToleratedFailureThreshold"


def test_map_over_non_array_fails(engine):
    d = chain({"Name": "M", "Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}}})
    assert run(engine, d, {"a": 1})[1][0] == "States.Runtime"


def test_execution_timeout(engine):
    d = chain({"Name": "W", "Type": "Wait", "Seconds": 5}, TimeoutSeconds=1)
    status, (error, _) = run(engine, d)
    assert (status, error) == ("TIMED_OUT", "States.Timeout")


def test_context_object(engine):
    d = chain({"Name": "A", "Type": "Pass", "Parameters": {
        "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "in.$": "$$.Execution.Input",
        "sm.$": "$$.StateMachine.Name", "state.$": "$$.State.Name"}})
    m = engine.create_machine("ctx", __import__("json").dumps(d))
    ex = engine.wait(engine.start_execution(m.arn, name="e1", input='{"q": 1}').arn)
    out = __import__("json").loads(ex.output)
    assert out == {"id": ex.arn, "name": "e1", "in": {"q": 1}, "sm": "ctx", "state": "A"}


def test_express_sync(engine):
    d = chain({"Name": "A", "Type": "Pass", "Result": 1})
    m = engine.create_machine("x", __import__("json").dumps(d), "EXPRESS")
    ex = engine.start_execution(m.arn, input="{}", sync=True)
    assert (ex.status, ex.output) == ("SUCCEEDED", "1") and ":express:" in ex.arn
    assert [e.type for e in engine.history(ex.arn)][-1] == "ExecutionSucceeded"


def test_stop_execution(engine):
    d = chain({"Name": "W", "Type": "Wait", "Seconds": 30})
    m = engine.create_machine("w", __import__("json").dumps(d))
    ex = engine.start_execution(m.arn)
    time.sleep(0.1)
    engine.stop_execution(ex.arn, error="Manual", cause="test")
    ex = engine.wait(ex.arn, 5)
    assert (ex.status, ex.error) == ("ABORTED", "Manual")
    assert engine.history(ex.arn)[-1].type == "ExecutionAborted"


def test_start_by_name_is_idempotent(engine):
    from runner.errors import ExecutionAlreadyExists

    d = chain({"Name": "W", "Type": "Wait", "Seconds": 30})
    m = engine.create_machine("w", __import__("json").dumps(d))
    a = engine.start_execution(m.arn, name="once", input='{"a": 1}')
    b = engine.start_execution(m.arn, name="once", input='{"a": 1}')
    assert a.arn == b.arn and len(engine.list_executions(m.arn)) == 1
    with pytest.raises(ExecutionAlreadyExists):
        engine.start_execution(m.arn, name="once", input='{"a": 2}')
    engine.stop_execution(a.arn)


def test_data_limit_exceeded(engine, functions):
    functions.handlers["big"] = lambda e: "x" * (300 * 1024)
    d = chain({"Name": "T", "Type": "Task", "Resource": "big",
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]},
              {"Name": "C", "Type": "Pass"})
    status, (error, _) = run(engine, d)
    # Not caught by States.ALL, as on AWS.
    assert (status, error) == ("FAILED", "States.DataLimitExceeded")
