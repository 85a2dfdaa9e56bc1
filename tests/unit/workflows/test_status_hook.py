"""The engine tells its `on_status` hook (the Runner's metrics) of every start and end."""

from __future__ import annotations

import json
import time

from prometheus_client import generate_latest

from runner.metrics import Metrics
from runner.workflows.engine import WorkflowEngine
from tests.unit.workflows.conftest import run

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}
WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}


def test_starts_and_ends_reach_the_hook_and_the_metrics(tmp_path, functions):
    metrics = Metrics()
    heard = []

    def hook(machine, status):
        heard.append((machine, status))
        metrics.workflow_execution(machine, status)

    engine = WorkflowEngine(str(tmp_path), functions, on_status=hook)
    try:
        assert run(engine, PASS, name="ok")[0] == "SUCCEEDED"
        assert run(engine, FAIL, name="bad")[0] == "FAILED"
        m = engine.create_machine("slow", json.dumps(WAIT), "STANDARD")
        ex = engine.start_execution(m.arn)
        assert engine.stop_execution(ex.arn).status == "ABORTED"
        deadline = time.monotonic() + 10
        while ("slow", "aborted") not in heard and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        engine.close()
    assert heard.count(("ok", "started")) == 1 and ("ok", "succeeded") in heard
    assert ("bad", "failed") in heard and ("slow", "aborted") in heard
    assert ("slow", "succeeded") not in heard  # the stopped run does not report an end again
    text = generate_latest(metrics.registry).decode()
    assert 'runner_workflow_executions_total{status="failed",workflow="bad"} 1.0' in text
