"""Workflows on the shared state, as `runner serve --state postgresql://` wires them
(cli/cluster_serve.workflow_store): two Runners on one PostgreSQL, each with its engine. A
state machine created through one node is there through the other; an execution started
through node A is described through node B, driven by A alone (A's node id holds its lease),
and a clean shutdown of A hands it to B at once."""

from __future__ import annotations

import json

import psycopg
import pytest

from runner import Runner
from runner.cli.cluster_serve import workflow_store
from runner.workflows.engine import WorkflowEngine
from tests.async_helpers import wait_for
from tests.state_fixtures import fresh_database
from tests.unit.workflows.conftest import Functions

DEFINITION = {"StartAt": "A", "States": {
    "A": {"Type": "Task", "Resource": "inc", "Next": "W"},
    "W": {"Type": "Wait", "Seconds": 1, "Next": "B"},
    "B": {"Type": "Task", "Resource": "inc", "End": True}}}


@pytest.fixture
def two_nodes(pg_server, tmp_path):
    url = fresh_database(pg_server)
    nodes = []
    for i in range(2):
        runner = Runner(str(tmp_path / f"n{i}"), idle_ttl_s=60, state=url)
        functions = Functions()  # each node's own recorder: which node ran a task
        functions.handlers["inc"] = lambda e: {"v": e["v"] + 1}
        store, owner = workflow_store(runner)
        engine = WorkflowEngine(runner.data_dir, functions, store=store, owner=owner)
        engine.start()
        nodes.append((runner, engine, functions))
    yield url, nodes
    for runner, engine, _ in nodes:
        engine.close()
        runner.close()


def test_an_execution_is_seen_through_every_node_and_driven_by_one(two_nodes):
    url, [(ra, a, fa), (rb, b, fb)] = two_nodes
    machine = a.create_machine("m", json.dumps(DEFINITION)).arn
    assert [m.arn for m in b.list_machines()] == [machine]
    arn = a.start_execution(machine, name="e1", input='{"v": 0}').arn
    assert b.describe_execution(arn).status in ("RUNNING", "SUCCEEDED")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT holder FROM cluster_leases WHERE name = %s",
                           (f"workflow:{arn}",)).fetchone()
    assert row is None or row[0] == ra.state.node_id  # None: it already ended and released
    done = b.wait(arn, 60)
    assert (done.status, json.loads(done.output)) == ("SUCCEEDED", {"v": 2})
    assert len(fa.calls) == 2 and fb.calls == []
    assert [e.arn for e in b.list_executions(machine)] == [arn]


def test_a_clean_shutdown_hands_executions_over_at_once(two_nodes):
    url, [(ra, a, fa), (rb, b, fb)] = two_nodes
    d = {**DEFINITION, "States": {**DEFINITION["States"],
                                  "W": {"Type": "Wait", "Seconds": 3, "Next": "B"}}}
    machine = a.create_machine("m", json.dumps(d)).arn
    arn = a.start_execution(machine, input='{"v": 0}').arn
    wait_for(lambda: any(e.type == "WaitStateEntered" for e in b.history(arn)),
             "the execution to enter its Wait")
    a.close()  # releases the lease (a node's SIGTERM): B's keeper adopts it at its next tick
    done = b.wait(arn, 60)
    assert (done.status, json.loads(done.output)) == ("SUCCEEDED", {"v": 2})
    assert len(fa.calls) == 1 and len(fb.calls) == 1
