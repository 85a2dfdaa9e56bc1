"""Due times on the store's clock (decision 079): a Wait's end, a retry delay's and the
TimeoutSeconds deadline are computed and compared on WorkflowStore.clock(), in a cluster the
database's, so a node that adopts an execution reads them on the clock that wrote them. Here
the store's clock is an hour ahead of this host's: mixing the two would wait an hour or time
out at once."""

from __future__ import annotations

import json
import time

from runner.storage.workflows import SQLiteWorkflowStore
from runner.workflows.engine import WorkflowEngine
from tests.unit.workflows.conftest import FunctionFails, Functions

AHEAD_S = 3600.0


class AheadStore(SQLiteWorkflowStore):
    """A real store whose shared clock (a database's) is an hour ahead of this host's."""

    def clock(self) -> float:
        return time.time() + AHEAD_S


def _engine(tmp_path, functions=None):
    return WorkflowEngine(str(tmp_path), functions or Functions(),
                          store=AheadStore(str(tmp_path)))


def test_a_wait_and_the_start_are_on_the_stores_clock(tmp_path):
    engine = _engine(tmp_path)
    try:
        d = {"StartAt": "W", "TimeoutSeconds": 60, "States": {
            "W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
            "P": {"Type": "Pass", "End": True}}}
        m = engine.create_machine("m", json.dumps(d))
        began = time.time()
        ex = engine.start_execution(m.arn, input="{}")
        assert abs(ex.start - (began + AHEAD_S)) < 5
        deadline = time.monotonic() + 10
        cursor = {}
        while not cursor.get("wake_at") and time.monotonic() < deadline:
            cursor = engine.store.get_execution(ex.arn).cursor or {}
            time.sleep(0.01)
        assert abs(cursor["wake_at"] - (began + AHEAD_S + 1)) < 5  # not this host's time
        done = engine.wait(ex.arn, 30)
        assert done.status == "SUCCEEDED", done
        assert 0.9 <= time.time() - began < 20  # waited its second: no more, not at once
    finally:
        engine.close()


def test_retry_delays_and_the_timeout_count_on_the_stores_clock(tmp_path):
    functions = Functions()

    def flaky(event):
        if len(functions.calls) < 2:
            raise FunctionFails("Boom")
        return "ok"

    functions.handlers["flaky"] = flaky
    engine = _engine(tmp_path, functions)
    try:
        d = {"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "flaky", "End": True,
            "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 3}]}}}
        m = engine.create_machine("retry", json.dumps(d))
        began = time.time()
        done = engine.wait(engine.start_execution(m.arn, input="{}").arn, 30)
        assert done.status == "SUCCEEDED" and 0.9 <= time.time() - began < 20, done
        # TimeoutSeconds from a start on the store's clock, checked on it too.
        d = {"StartAt": "W", "TimeoutSeconds": 1, "States": {
            "W": {"Type": "Wait", "Seconds": 600, "End": True}}}
        m = engine.create_machine("slow", json.dumps(d))
        began = time.time()
        done = engine.wait(engine.start_execution(m.arn, input="{}").arn, 30)
        assert done.status == "TIMED_OUT" and 0.9 <= time.time() - began < 20, done
    finally:
        engine.close()
