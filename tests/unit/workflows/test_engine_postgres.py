"""The engine on the PostgreSQL workflow store: an execution runs, stops mid-way and resumes
from a second engine on the same database (the shared state the cluster work will use)."""

from __future__ import annotations

import json
import shutil

import pytest

from runner.storage.postgres.workflows import PostgresWorkflowStore
from runner.workflows.engine import WorkflowEngine
from tests.real_servers import postgres_server
from tests.unit.storage.test_workflow_store import ready
from tests.unit.workflows.conftest import Functions


@pytest.fixture
def pg():
    server = postgres_server(logical=False)
    try:
        server.start()
        yield ready(server.url)
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def test_run_and_resume_on_postgres(pg):
    functions = Functions()
    functions.handlers["inc"] = lambda e: {"v": e["v"] + 1}
    d = {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "inc", "Next": "W"},
                                    "W": {"Type": "Wait", "Seconds": 30, "Next": "B"},
                                    "B": {"Type": "Task", "Resource": "inc", "End": True}}}
    first = WorkflowEngine(None, functions, store=PostgresWorkflowStore(pg))
    arn = first.create_machine("m", json.dumps(d)).arn
    ex = first.start_execution(arn, input='{"v": 1}')
    for _ in range(500):
        if any(e.type == "WaitStateEntered" for e in first.history(ex.arn)):
            break
        __import__("time").sleep(0.01)
    first.close()  # stops its thread without ending the execution
    # The second engine finds it RUNNING in its Wait; shorten the wait in the stored cursor
    # (as if 30 s had passed) rather than sleep in a unit test.
    store = PostgresWorkflowStore(pg)
    cursor = store.get_execution(ex.arn).cursor
    assert cursor["state"] == "W" and cursor["wake_at"] > 0
    store.transition(ex.arn, [], cursor={**cursor, "wake_at": 0.0})
    second = WorkflowEngine(None, functions, store=store)
    try:
        assert second.start() == 1
        done = second.wait(ex.arn, 30)
        assert (done.status, json.loads(done.output)) == ("SUCCEEDED", {"v": 3})
        assert [c[0] for c in functions.calls] == ["inc", "inc"]  # A did not run again
        types = [e.type for e in second.history(ex.arn)]
        assert types.count("TaskStateEntered") == 2 and types[-1] == "ExecutionSucceeded"
    finally:
        second.close()
