"""The WorkflowStore contract, run against every implementation: SQLite (Standard executions),
memory (Express), PostgreSQL (for the cluster's shared state; a real server on loopback)."""

from __future__ import annotations

import itertools
import shutil

import pytest

from runner.errors import (
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
)
from runner.storage.workflows import (
    ABORTED,
    RUNNING,
    SUCCEEDED,
    Execution,
    SQLiteWorkflowStore,
    StateMachine,
)
from runner.storage.workflows_memory import MemoryWorkflowStore
from tests.real_servers import postgres_server

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:m"


@pytest.fixture(scope="module")
def pg_server():
    """One real PostgreSQL for the module; each test gets a schema of its own."""
    server = postgres_server(logical=False)
    try:
        server.start()
        ready(server.url)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def ready(url: str, timeout_s: float = 30.0) -> str:
    """The URL once PostgreSQL accepts connections: its port opens before it has finished
    starting up ("the database system is starting up")."""
    import time

    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(url).close()
            return url
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


_schemas = itertools.count()


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteWorkflowStore(str(tmp_path))
    elif request.param == "memory":
        s = MemoryWorkflowStore()
    else:
        from runner.storage.postgres.workflows import PostgresWorkflowStore

        s = PostgresWorkflowStore(request.getfixturevalue("pg_server").url,
                                  schema=f"wf_test_{next(_schemas)}")
    yield s
    s.close()


def machine(definition="{}", type="STANDARD"):
    return StateMachine(ARN, "m", definition, type, "", 1.0, 1.0)


def execution(name="e", input="{}", start=1.0):
    return Execution(f"{ARN}:{name}", ARN, name, RUNNING, input, start,
                     cursor={"state": "A", "input": {}}, definition="{}")


def test_machines(store):
    assert store.create_machine(machine()).arn == ARN
    assert store.create_machine(machine()).arn == ARN  # same again: idempotent
    with pytest.raises(StateMachineAlreadyExists):
        store.create_machine(machine(definition='{"x": 1}'))
    assert [m.name for m in store.list_machines()] == ["m"]
    assert store.update_machine(ARN, definition='{"y": 1}').definition == '{"y": 1}'
    assert store.get_machine(ARN).definition == '{"y": 1}'
    store.delete_machine(ARN)
    with pytest.raises(StateMachineDoesNotExist):
        store.get_machine(ARN)


def test_execution_life_and_history(store):
    ex, created = store.create_execution(execution(), [("ExecutionStarted", {"input": "{}"})])
    assert created and store.get_execution(ex.arn).cursor == {"state": "A", "input": {}}
    assert store.get_execution(ex.arn).definition == "{}"
    assert store.transition(ex.arn, [("PassStateEntered", {"name": "A"}),
                                     ("PassStateExited", {"name": "A"})],
                            cursor={"state": "B", "input": 1})
    assert [e.id for e in store.history(ex.arn)] == [1, 2, 3]
    assert [e.previous_id for e in store.history(ex.arn)] == [0, 1, 2]
    assert store.running()[0].cursor == {"state": "B", "input": 1}
    assert store.transition(ex.arn, [("ExecutionSucceeded", {"output": "1"})], cursor=None,
                            status=SUCCEEDED, output="1")
    done = store.get_execution(ex.arn)
    assert (done.status, done.output, done.cursor) == (SUCCEEDED, "1", None)
    assert done.stop is not None and store.running() == []
    # A finished execution takes no more transitions (StopExecution won the race).
    assert not store.transition(ex.arn, [("X", {})], cursor=None, status=ABORTED)
    assert store.get_execution(ex.arn).status == SUCCEEDED
    rev = store.history(ex.arn, reverse=True, limit=2)
    assert [e.type for e in rev] == ["ExecutionSucceeded", "PassStateExited"]
    assert [e.id for e in store.history(ex.arn, reverse=True, after=rev[-1].id)] == [2, 1]
    assert [e.id for e in store.history(ex.arn, after=2, limit=1)] == [3]
    assert store.history(ex.arn)[0].details == {"input": "{}"}


def test_an_execution_keeps_its_trace(store):
    from dataclasses import replace

    traced = replace(execution(name="t"), trace="Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    store.create_execution(traced, [])
    assert store.get_execution(traced.arn).trace == traced.trace
    assert {e.trace for e in store.running()} == {traced.trace}
    store.create_execution(execution(name="plain"), [])
    assert store.get_execution(execution(name="plain").arn).trace == ""


def test_start_by_name_idempotent(store):
    a, created = store.create_execution(execution(), [])
    b, again = store.create_execution(execution(), [])
    assert created and not again and a.arn == b.arn
    with pytest.raises(ExecutionAlreadyExists):
        store.create_execution(execution(input='{"other": 1}'), [])


def test_list_executions_newest_first_and_by_status(store):
    for i in range(3):
        store.create_execution(execution(f"e{i}", start=float(i)), [])
    store.transition(f"{ARN}:e1", [], cursor=None, status=ABORTED)
    assert [e.name for e in store.list_executions(ARN)] == ["e2", "e1", "e0"]
    assert [e.name for e in store.list_executions(ARN, ABORTED)] == ["e1"]


def test_unknown_execution(store):
    with pytest.raises(ExecutionDoesNotExist):
        store.get_execution(f"{ARN}:nope")
    with pytest.raises(ExecutionDoesNotExist):
        store.history(f"{ARN}:nope")
    with pytest.raises(ExecutionDoesNotExist):
        store.transition(f"{ARN}:nope", [], cursor=None)


def test_sqlite_survives_reopen(tmp_path):
    s = SQLiteWorkflowStore(str(tmp_path))
    s.create_machine(machine())
    s.create_execution(execution(), [("ExecutionStarted", {})])
    s.transition(f"{ARN}:e", [("PassStateEntered", {})], cursor={"state": "Z", "input": 2})
    s.close()
    s = SQLiteWorkflowStore(str(tmp_path))
    assert s.running()[0].cursor == {"state": "Z", "input": 2}
    assert len(s.history(f"{ARN}:e")) == 2
    s.close()


# ---------------------------------------------------------------- leases (decision 070)


def test_claim_renew_release(store):
    """Claims of a RUNNING execution: the holder renews; on a shared store a second owner is
    refused until the holder releases; an unshared store (one process) grants every claim."""
    ex, _ = store.create_execution(execution(), [])
    assert store.claim(ex.arn, "a", 60) and store.claim(ex.arn, "a", 60)  # taken, renewed
    assert store.claim(ex.arn, "b", 60) is (not store.shared)
    if store.shared:
        assert store.resumable() == []  # a live lease holds it
    store.release(ex.arn, "b")  # not b's: changes nothing
    if store.shared:
        assert not store.claim(ex.arn, "b", 60)
    store.release(ex.arn, "a")
    assert [e.arn for e in store.resumable()] == [ex.arn]
    assert store.claim(ex.arn, "b", 60)


def test_claims_only_running_executions(store):
    ex, _ = store.create_execution(execution(), [])
    assert not store.claim(f"{ARN}:unknown", "a", 60)
    store.transition(ex.arn, [("ExecutionSucceeded", {})], cursor=None, status=SUCCEEDED)
    assert not store.claim(ex.arn, "a", 60)
    assert store.resumable() == []


def test_a_lapsed_lease_is_taken_over_and_fences_the_old_holder(store):
    """The old holder's transitions are refused once another owner took the lease, and
    stay accepted while nobody has (expiry alone moves nothing); unshared stores do not
    check owners."""
    import time

    ex, _ = store.create_execution(execution(), [])
    assert store.claim(ex.arn, "a", 0.2)
    deadline = time.monotonic() + 30
    while ex.arn not in [e.arn for e in store.resumable()]:
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.05)
    assert store.transition(ex.arn, [("PassStateEntered", {})], cursor={"state": "B"},
                            owner="a")
    assert store.claim(ex.arn, "b", 60)
    fenced = not store.transition(ex.arn, [("PassStateExited", {})], cursor={"state": "C"},
                                  owner="a")
    assert fenced is store.shared
    assert store.transition(ex.arn, [("PassStateEntered", {})], cursor={"state": "D"},
                            owner="b")
    # StopExecution from any node names no owner and is never fenced.
    assert store.transition(ex.arn, [("ExecutionAborted", {})], cursor=None, status=ABORTED)
    assert not store.claim(ex.arn, "b", 60)


def test_a_transition_needs_the_lease_on_a_shared_store(store):
    ex, _ = store.create_execution(execution(), [])
    assert store.transition(ex.arn, [], cursor={"state": "B"}, owner="a") is (not store.shared)


def _lapse():
    import time

    time.sleep(0.3)  # past the 0.2 s leases below


def test_an_ended_execution_leaves_no_lease_behind(store):
    """Succeeded by its holder, or stopped by another node while its holder still holds the
    lease: either way the end removes the lease, so a later sweep finds nothing."""
    done, _ = store.create_execution(execution("done"), [])
    stopped, _ = store.create_execution(execution("stopped"), [])
    for ex in (done, stopped):
        assert store.claim(ex.arn, "a", 0.2)
    assert store.transition(done.arn, [("ExecutionSucceeded", {})], cursor=None,
                            status=SUCCEEDED, owner="a")
    assert store.transition(stopped.arn, [("ExecutionAborted", {})], cursor=None,
                            status=ABORTED)
    _lapse()
    assert store.prune_leases() == 0


def test_the_sweep_prunes_leftover_leases_of_ended_executions_only(store):
    running, _ = store.create_execution(execution("running"), [])
    ended, _ = store.create_execution(execution("ended"), [])
    store.transition(ended.arn, [("ExecutionSucceeded", {})], cursor=None, status=SUCCEEDED)
    assert store.claim(running.arn, "a", 0.2)
    if store.shared:
        # A leftover as an earlier version (or a node dying between end and release) left
        # it: the ended execution's expired lease, and one of an execution that is gone.
        from runner.storage.postgres.workflows import lease_name

        for arn in (ended.arn, f"{ARN}:gone"):
            store._db.execute("INSERT INTO cluster_leases VALUES (%s, 'a', now() - "
                              "interval '1 second')", (lease_name(arn),))
    _lapse()
    assert store.prune_leases() == (2 if store.shared else 0)
    assert store.prune_leases() == 0
    # The RUNNING execution's lapsed lease stays: it is what adoption takes over.
    assert [e.arn for e in store.resumable()] == [running.arn]
    assert store.claim(running.arn, "b", 60)


def test_the_clock_is_the_wall_clock_every_engine_of_the_store_agrees_on(store):
    import time

    # Same host here, so the database's clock and this one's agree to within NTP's error
    # and a round trip; what matters is that due times are computed on store.clock().
    before = time.time()
    t = store.clock()
    assert before - 1.0 < t < time.time() + 1.0
    assert store.clock() >= t - 0.01  # no step backwards between reads
