"""Retry delays: min(IntervalSeconds x BackoffRate^n, MaxDelaySeconds), within +/-10%, measured
on the history's own timestamps (failure -> next scheduling)."""

from __future__ import annotations

import json

from runner.workflows.interpreter import retry_delay
from tests.unit.workflows.conftest import FunctionFails


def test_formula_and_jitter():
    r = {"IntervalSeconds": 2, "BackoffRate": 3.0, "MaxDelaySeconds": 10}
    assert [retry_delay(r, n) for n in range(4)] == [2, 6, 10, 10]
    assert retry_delay({}, 0) == 1 and retry_delay({}, 2) == 4  # defaults: 1 s, rate 2.0
    jittered = [retry_delay({**r, "JitterStrategy": "FULL"}, 1) for _ in range(200)]
    assert all(0 <= d <= 6 for d in jittered) and max(jittered) - min(jittered) > 1


def test_measured_delays(engine, functions):
    def fail(e):
        raise FunctionFails("Boom")
    functions.handlers["f"] = fail
    d = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "End": True, "Retry": [
        {"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "BackoffRate": 2.5,
         "MaxDelaySeconds": 2, "MaxAttempts": 2}]}}}
    m = engine.create_machine("r", json.dumps(d))
    ex = engine.wait(engine.start_execution(m.arn).arn, 30)
    assert (ex.status, ex.error) == ("FAILED", "Boom")
    events = engine.history(ex.arn)
    failed = [e.timestamp for e in events if e.type == "LambdaFunctionFailed"]
    scheduled = [e.timestamp for e in events if e.type == "LambdaFunctionScheduled"]
    delays = [s - f for f, s in zip(failed, scheduled[1:])]
    for got, want in zip(delays, [1.0, 2.0]):  # 1 x 2.5^1 = 2.5 is capped at 2
        assert abs(got - want) <= 0.1 * want, delays
    assert len(delays) == 2
