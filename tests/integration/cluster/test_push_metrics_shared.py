"""Push triggers, topics and the dashboard's metric series on the shared state (issue 23,
decision 078): two nodes on one PostgreSQL, each a Runner with the push side and its HTTP
front, as `runner serve --state postgresql://...` builds them. A trigger and a subscription
created through node A are listed through node B and fire for pushes that reach node B;
invocations run on both nodes show summed in the dashboard read through either node. Real
environments running the recorder guest."""

from __future__ import annotations

import json

import pytest

from runner.errors import InvalidParameter
from runner.triggers.records import s3_record
from tests.async_helpers import RECORDER, records, wait_for
from tests.integration.cluster.conftest import http_nodes
from tests.integration.http_fixtures import Http
from tests.state_fixtures import fresh_database

pytestmark = pytest.mark.usefixtures("guests_see_host_files")


@pytest.fixture
def nodes(pg_server, tmp_path):
    """[(runner, push, http client)] for two nodes sharing one fresh database."""
    with http_nodes(fresh_database(pg_server), tmp_path, 2, push=True,
                    async_retry_base_s=0.05) as started:
        clients = [Http(front.port) for _, front, _ in started]
        yield [(runner, push, client) for (runner, _, push), client in zip(started, clients)]
        for client in clients:
            client.close()


@pytest.fixture
def rec_dir(nodes, tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    runner = nodes[0][0]
    for name in ("worker", "counted"):
        runner.deploy(name, RECORDER, runtime="python", handler="app.handler",
                      environment={"RECORD_DIR": str(d)})
    return str(d)


def test_a_trigger_and_a_subscription_made_on_one_node_fire_through_the_other(nodes, rec_dir):
    (_, push_a, _), (runner_b, push_b, http_b) = nodes
    push_a.triggers.add("pics", "worker", "uploads", suffix=".jpg")
    push_a.topics.create("orders")
    sub = push_a.topics.subscribe("orders", "worker", policy={"kind": ["paid"]})
    # Read through B: the same rows, not a copy of B's own.
    assert [(t.name, t.bucket, t.suffix) for t in push_b.triggers.list()] == [
        ("pics", "uploads", ".jpg")]
    assert push_b.topics.list() == ["orders"]
    assert push_b.topics.subscriptions("orders") == [sub]
    # Subscribing the same function again through B is the same subscription (no double
    # delivery); the overlapping trigger B would add is refused as on one node.
    assert push_b.topics.subscribe("orders", "worker", policy={"kind": ["paid"]}) == sub
    with pytest.raises(InvalidParameter, match="overlap"):
        push_b.triggers.add("pics2", "worker", "uploads", prefix="a/")

    rec = s3_record("uploads", "a/cat.jpg", "ObjectCreated:Put", size=5, sequencer="0A")
    status, _, doc = http_b.json("POST", "/events/s3", json.dumps({"Records": [rec]}))
    assert status == 202 and len(doc["invocations"]) == 1
    status, _, doc = http_b.json("POST", "/topics/orders", json.dumps(
        {"Message": "hello", "MessageAttributes": {"kind": "paid"}}))
    assert status == 202 and [i["subscription"] for i in doc["invocations"]] == [sub.id]
    got = wait_for(lambda: len(records(rec_dir, "worker")) == 2 and records(rec_dir, "worker"),
                   "the trigger's and the topic's deliveries")
    events = [g[1]["Records"][0] for g in got]
    assert sorted(e.get("EventSource", e.get("eventSource")) for e in events) == [
        "aws:s3", "aws:sns"]
    wait_for(lambda: runner_b.events.pending() == 0, "the queue to drain")

    # Deleted through B, gone for A too.
    push_b.triggers.delete("pics")
    push_b.topics.delete("orders")
    assert push_a.triggers.list() == [] and push_a.topics.list() == []


def test_invocations_on_both_nodes_are_summed_through_either(nodes, rec_dir):
    (runner_a, _, http_a), (runner_b, _, http_b) = nodes
    for runner, n in ((runner_a, 2), (runner_b, 3)):
        for _ in range(n):
            assert runner.invoke("counted", b"{}").function_error is None
        runner._series_writer.flush()  # what the writer does every FLUSH_S, now
    # Each node wrote its own rows: the table holds both.
    rows = runner_a.series.db.execute(
        "SELECT node_id, SUM(invocations) AS n, SUM(cold_starts) AS cold FROM metric_minutes "
        "WHERE function = 'counted' GROUP BY node_id ORDER BY SUM(invocations)")
    assert [(r["node_id"], r["n"]) for r in rows] == [
        (runner_a.state.node_id, 2), (runner_b.state.node_id, 3)]
    assert all(r["cold"] >= 1 for r in rows)  # each node started its own environment
    for http in (http_a, http_b):
        status, _, doc = http.json("GET", "/ui/api/functions?window=3600")
        assert status == 200
        [counted] = [f for f in doc["functions"] if f["name"] == "counted"]
        assert counted["invocations"] == 5 and counted["errors"] == 0
        assert counted["cold_starts"] == sum(r["cold"] for r in rows)
        status, _, doc = http.json("GET", "/ui/api/functions/counted?window=3600")
        assert status == 200 and sum(p["invocations"] for p in doc["series"]) == 5
    # A delete through A clears B's rows too.
    runner_a.delete("counted")
    assert runner_b.series.series("counted", 0, 2 ** 40) == []
