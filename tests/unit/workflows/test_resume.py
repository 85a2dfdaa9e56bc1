"""Resuming after the engine stopped mid-execution (a restart without kill -9: the real
kill -9 test is tests/reliability/test_kill9_workflows.py): finished top-level states and
finished Map iterations do not run again."""

from __future__ import annotations

import json
import threading
import time

from runner.storage.workflows import SQLiteWorkflowStore
from runner.workflows.engine import WorkflowEngine
from tests.unit.workflows.conftest import Functions


def test_map_resumes_only_unfinished_iterations(tmp_path):
    functions = Functions()
    release = threading.Event()
    blocked = []

    def work(e):
        if e == 2 and not blocked:
            blocked.append(1)
            release.wait(30)  # the first server "dies" while this iteration runs
        return e * 10
    functions.handlers["work"] = work
    d = {"StartAt": "Before", "States": {
        "Before": {"Type": "Task", "Resource": "work", "InputPath": "$.first", "ResultPath": "$.b",
                   "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ResultPath": "$.m",
              "ItemProcessor": {"StartAt": "T", "States": {
                  "T": {"Type": "Task", "Resource": "work", "End": True}}}, "End": True}}}
    first = WorkflowEngine(str(tmp_path), functions)
    arn = first.create_machine("m", json.dumps(d)).arn
    ex = first.start_execution(arn, input=json.dumps({"first": 7, "items": [0, 1, 2, 3]}))
    deadline = time.monotonic() + 30
    while not blocked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert blocked
    # A crash: the first engine stops without recording anything more (its thread is stuck
    # in the invocation); a second engine on the same data directory resumes.
    first._closing = True
    second = WorkflowEngine(str(tmp_path), functions)
    try:
        assert second.start() == 1
        done = second.wait(ex.arn, 30)
        assert done.status == "SUCCEEDED", done
        assert json.loads(done.output) == {"first": 7, "items": [0, 1, 2, 3], "b": 70,
                                           "m": [0, 10, 20, 30]}
        calls = [e for name, e in functions.calls]
        # "Before" and iterations 0 and 1 ran once; 2 twice (in flight at the crash); 3 once.
        assert sorted(calls) == [0, 1, 2, 2, 3, 7], calls
    finally:
        release.set()
        first.close()
        second.close()
    # The first engine's late result (its stuck invocation returned at release) changed
    # nothing: the execution had finished.
    store = SQLiteWorkflowStore(str(tmp_path))
    try:
        assert store.get_execution(ex.arn).status == "SUCCEEDED"
        assert store.history(ex.arn)[-1].type == "ExecutionSucceeded"
    finally:
        store.close()
