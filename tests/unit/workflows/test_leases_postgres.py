"""Two engines on one PostgreSQL workflow store (two nodes of a cluster, decision 070): each
RUNNING execution is driven by exactly one of them, and when its driver stops renewing the
lease (a killed node: close(release=False) leaves the lease to lapse) the other adopts it and
finishes it from the cursor, running each state's task once. Every engine has a recorder of
its own, so the tests see which engine ran what.

Timing: leases of 3 s (renewed every 0.6 s: a thread stalled for 3 s on a busy machine would
lose its lease, and the test that only checks exclusion uses 60 s); every wait polls with a
generous deadline, and no assertion depends on how long something took."""

from __future__ import annotations

import json
import threading
import time

import pytest

from runner.storage.postgres.workflows import PostgresWorkflowStore
from runner.workflows.engine import WorkflowEngine
from tests.state_fixtures import fresh_database, pg_server  # noqa: F401
from tests.unit.workflows.conftest import Functions

LEASE_S = 3.0
DEADLINE_S = 60.0

# A -> Wait -> B: the Wait is where a test stops the first engine.
DEFINITION = {"StartAt": "A", "States": {
    "A": {"Type": "Task", "Resource": "inc", "Next": "W"},
    "W": {"Type": "Wait", "Seconds": 2, "Next": "B"},
    "B": {"Type": "Task", "Resource": "inc", "End": True}}}


def recorder() -> Functions:
    f = Functions()
    f.handlers["inc"] = lambda e: {"v": e["v"] + 1}
    return f


@pytest.fixture
def engines(pg_server):  # noqa: F811
    """engine(name) -> a started WorkflowEngine on the test's database; all closed after."""
    url = fresh_database(pg_server)
    made: list[WorkflowEngine] = []

    def engine(name: str, functions: Functions, *, start: bool = True,
               lease_s: float = LEASE_S) -> WorkflowEngine:
        e = WorkflowEngine(None, functions, store=PostgresWorkflowStore(url), owner=name,
                           lease_s=lease_s)
        made.append(e)
        if start:
            e.start()
        return e

    yield engine
    for e in made:
        try:
            e.close(timeout=2)
        except Exception:
            pass  # closed by the test already


def until(condition, what: str):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def entered(engine: WorkflowEngine, arn: str, state_type: str) -> bool:
    return any(e.type == f"{state_type}StateEntered" for e in engine.history(arn))


def test_only_the_engine_that_started_an_execution_drives_it(engines):
    fa, fb = recorder(), recorder()
    a, b = engines("node-a", fa, lease_s=60), engines("node-b", fb, lease_s=60)
    arn = a.create_machine("m", json.dumps(DEFINITION)).arn
    started = [a.start_execution(arn, name=f"e{i}", input='{"v": 0}').arn for i in range(3)]
    for ex in started:
        done = b.wait(ex, DEADLINE_S)  # B sees them (one shared store) but does not run them
        assert (done.status, json.loads(done.output)) == ("SUCCEEDED", {"v": 2})
    assert len(fa.calls) == 6 and fb.calls == []
    assert b.describe_execution(started[0]).status == "SUCCEEDED"


def test_a_stopped_node_execution_is_resumed_once_by_the_other(engines):
    fa, fb = recorder(), recorder()
    a = engines("node-a", fa)
    b = engines("node-b", fb)
    arn = a.create_machine("m", json.dumps(DEFINITION)).arn
    ex = a.start_execution(arn, input='{"v": 0}').arn
    until(lambda: entered(a, ex, "Wait"), "the execution to enter its Wait")
    a.close(release=False)  # as a killed node: its lease lapses, nobody frees it
    done = b.wait(ex, DEADLINE_S)
    assert (done.status, json.loads(done.output)) == ("SUCCEEDED", {"v": 2})
    # A ran on node-a, B on node-b: each state's task once in all.
    assert [c[1] for c in fa.calls] == [{"v": 0}] and [c[1] for c in fb.calls] == [{"v": 1}]
    types = [e.type for e in b.history(ex)]
    assert types.count("TaskStateEntered") == 2 and types.count("ExecutionSucceeded") == 1


def test_a_holder_that_lost_its_lease_cannot_write(engines):
    """A node paused past the ttl (here: its keeper stopped and its task blocked) loses the
    execution to the other node, which runs the interrupted task again (at-least-once, as
    after a crash) and finishes; the paused node's late result is refused by the store."""
    release = threading.Event()
    fa, fb = recorder(), recorder()
    fa.handlers["inc"] = lambda e: (release.wait(DEADLINE_S), {"v": e["v"] + 1})[1]
    a, b = engines("node-a", fa), engines("node-b", fb)
    arn = a.create_machine("m", json.dumps(DEFINITION)).arn
    ex = a.start_execution(arn, input='{"v": 0}').arn
    until(lambda: fa.calls, "node-a to invoke A")
    a._keeper.stop()  # node-a stops renewing: paused
    done = b.wait(ex, DEADLINE_S)
    assert (done.status, json.loads(done.output)) == ("SUCCEEDED", {"v": 2})
    before = [(e.type, e.details) for e in b.history(ex)]
    release.set()  # node-a wakes up with A's result, too late
    until(lambda: not a.driven(), "node-a's run to end")
    assert [(e.type, e.details) for e in b.history(ex)] == before
    assert [c[1] for c in fb.calls] == [{"v": 0}, {"v": 1}]


def test_stop_execution_through_another_node_ends_the_driver_run(engines):
    fa = recorder()
    a, b = engines("node-a", fa), engines("node-b", recorder())
    d = {**DEFINITION, "States": {**DEFINITION["States"],
                                  "W": {"Type": "Wait", "Seconds": 3600, "Next": "B"}}}
    arn = a.create_machine("m", json.dumps(d)).arn
    ex = a.start_execution(arn, input='{"v": 0}').arn
    until(lambda: entered(a, ex, "Wait"), "the execution to enter its Wait")
    assert b.stop_execution(ex).status == "ABORTED"
    until(lambda: not a.driven(), "node-a to stop driving the aborted execution")
    types = [e.type for e in a.history(ex)]
    assert types[-1] == "ExecutionAborted" and len(fa.calls) == 1


def test_executions_left_running_are_adopted_when_an_engine_starts(engines):
    fa, fb = recorder(), recorder()
    a = engines("node-a", fa)
    arn = a.create_machine("m", json.dumps(DEFINITION)).arn
    ex = a.start_execution(arn, input='{"v": 0}').arn
    until(lambda: entered(a, ex, "Wait"), "the execution to enter its Wait")
    a.close(release=True)  # a clean shutdown hands the execution over at once
    b = engines("node-b", fb, start=False)
    assert b.start() == 1
    done = b.wait(ex, DEADLINE_S)
    assert done.status == "SUCCEEDED" and len(fa.calls) == 1 and len(fb.calls) == 1


def test_finished_executions_leave_no_leases_and_the_keeper_sweeps_leftovers(engines):
    import psycopg

    a = engines("node-a", recorder(), lease_s=60)
    arn = a.create_machine("m", json.dumps(DEFINITION)).arn
    ex = a.start_execution(arn, input='{"v": 0}').arn
    assert a.wait(ex, DEADLINE_S).status == "SUCCEEDED"
    with psycopg.connect(a.store._db.url, autocommit=True) as db:
        def leases():
            return [r[0] for r in db.execute("SELECT name FROM cluster_leases "
                                             "WHERE name LIKE 'workflow:%'")]

        assert leases() == []
        # A leftover (an earlier version's, or a node that died before releasing), expired.
        db.execute("INSERT INTO cluster_leases VALUES (%s, 'node-x', now() - interval '1 s')",
                   (f"workflow:{ex}",))
        # The keeper's sweep (its first tick, then every PRUNE_EVERY-th) removes it.
        assert a._keeper.sweep() == 1 and leases() == []
