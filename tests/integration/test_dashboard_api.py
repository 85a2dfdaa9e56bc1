"""The dashboard's JSON API for workflows and for what invokes a function (issue 22), on a
real HTTP front with a workflow engine, the push side (schedules, triggers, topics) and the
event source manager, as `runner serve` builds them; and on a front built without them."""

from __future__ import annotations

import json

import pytest

from runner import Runner
from runner.service.http import HttpFront
from runner.service.push import Push
from runner.sources.manager import EventSources
from runner.workflows.engine import WorkflowEngine
from tests.conftest import guest
from tests.integration.http_fixtures import Http

FLOW = {"StartAt": "Prepare", "States": {
    "Prepare": {"Type": "Pass", "Result": {"card": "4242"}, "Next": "Charge"},
    "Charge": {"Type": "Task", "Resource": "echo", "Next": "Done"},
    "Done": {"Type": "Succeed"}}}


@pytest.fixture
def full(tmp_path):
    """(runner, engine, push, sources, http client) of a front with every optional part."""
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    engine = WorkflowEngine(runner.data_dir, runner.invoke)
    push = Push(runner)  # not started: no schedule fires during the test
    sources = EventSources(runner)  # not started: no poller runs
    front = HttpFront(runner, "127.0.0.1", 0, push=push, workflows=engine, sources=sources)
    front.start()
    client = Http(front.port)
    yield runner, engine, push, sources, client
    client.close()
    front.stop()
    sources.close()
    push.close()
    engine.close()
    runner.close()


def test_workflows_executions_and_the_states_outcomes(full):
    runner, engine, _, _, h = full
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    runner.deploy("raises", guest("python", "raises"), runtime="python", handler="app.handler")
    engine.create_machine("orders", json.dumps(FLOW))
    failing = json.loads(json.dumps(FLOW))
    failing["States"]["Charge"]["Resource"] = "raises"
    engine.create_machine("refunds", json.dumps(failing))
    for machine, name in (("orders", "o1"), ("refunds", "r1")):
        engine.wait(engine.start_execution(machine, name, "{}").arn, 60)

    status, _, doc = h.json("GET", "/ui/api/workflows")
    assert status == 200 and doc["configured"] is True
    by = {m["name"]: m for m in doc["machines"]}
    assert by["orders"]["counts"]["SUCCEEDED"] == 1 and by["orders"]["counts"]["FAILED"] == 0
    assert by["refunds"]["counts"]["FAILED"] == 1 and by["refunds"]["executions"] == 1

    status, _, page = h.json("GET", "/ui/api/workflows/refunds")
    assert status == 200 and [x["status"] for x in page["executions"]] == ["FAILED"]
    assert [e["kind"] for e in page["graph"]["edges"]] == ["next", "next"]

    status, _, ok = h.json("GET", "/ui/api/workflows/orders/executions/o1")
    assert status == 200 and ok["status"] == "SUCCEEDED"
    assert {n["name"]: n["outcome"] for n in ok["graph"]["nodes"]} == {
        "Prepare": "succeeded", "Charge": "succeeded", "Done": "succeeded"}
    assert json.loads(ok["output"]) == {"card": "4242"}  # echo returned its event

    status, _, bad = h.json("GET", "/ui/api/workflows/refunds/executions/r1")
    assert status == 200 and bad["status"] == "FAILED" and bad["error"] == "PaymentDeclined"
    assert {n["name"]: n["outcome"] for n in bad["graph"]["nodes"]} == {
        "Prepare": "succeeded", "Charge": "failed", "Done": "not_reached"}
    assert "LambdaFunctionFailed" in [e["type"] for e in bad["events"]]

    status, _, err = h.json("GET", "/ui/api/workflows/refunds/executions/nope")
    assert status == 404 and "Execution Does Not Exist" in err["message"]
    status, _, err = h.json("GET", "/ui/api/workflows/nope")
    assert status == 404


def test_a_functions_page_lists_its_mappings_triggers_subscriptions_and_schedules(full):
    runner, _, push, sources, h = full
    for name in ("echo", "other"):
        runner.deploy(name, guest("python", "echo"), runtime="python", handler="app.handler")
    push.scheduler.add("nightly", "echo", "cron(0 3 * * ? *)")
    push.scheduler.add("elsewhere", "other", "rate(5 minutes)")
    push.triggers.add("uploads", "echo", "photos", prefix="in/", suffix=".jpg")
    push.topics.create("orders")
    sub = push.topics.subscribe("orders", "echo", policy={"kind": ["paid"]})
    push.topics.subscribe("orders", "other")
    # No broker listens on port 1: creating the mapping still succeeds (its poller would retry).
    m = sources.create(function="echo", source_type="redis-stream",
                       endpoint="redis://:s3cret@127.0.0.1:1/0", name="clicks")

    status, _, doc = h.json("GET", "/ui/api/functions/echo")
    assert status == 200
    src = doc["event_sources"]
    assert all(src[k]["configured"] for k in ("mappings", "triggers", "subscriptions", "schedules"))
    [sched] = src["schedules"]["items"]
    assert (sched["name"], sched["expression"], sched["enabled"]) == ("nightly", "cron(0 3 * * ? *)", True)
    assert sched["next_slot"] > 0
    [trig] = src["triggers"]["items"]
    assert (trig["bucket"], trig["prefix"], trig["suffix"]) == ("photos", "in/", ".jpg")
    assert src["subscriptions"]["items"] == [{"id": sub.id, "topic": "orders", "qualifier": "",
                                              "filter_policy": {"kind": ["paid"]}}]
    [mapping] = src["mappings"]["items"]
    assert mapping["uuid"] == m.uuid and mapping["name"] == "clicks"
    assert mapping["endpoint"] == "redis://:****@127.0.0.1:1/0"  # the password never shown
    assert "s3cret" not in json.dumps(doc)

    status, _, other = h.json("GET", "/ui/api/functions/other")
    assert [s["name"] for s in other["event_sources"]["schedules"]["items"]] == ["elsewhere"]
    assert other["event_sources"]["mappings"]["items"] == []
    assert len(other["event_sources"]["subscriptions"]["items"]) == 1


def test_a_front_without_workflows_or_sources_says_none_are_configured(tmp_path):
    with Runner(str(tmp_path / "data"), idle_ttl_s=60) as runner:
        runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
        front = HttpFront(runner, "127.0.0.1", 0)
        front.start()
        h = Http(front.port)
        try:
            status, _, doc = h.json("GET", "/ui/api/workflows")
            assert status == 200 and doc == {"configured": False, "machines": []}
            status, _, err = h.json("GET", "/ui/api/workflows/orders")
            assert status == 404 and "no workflows configured" in err["message"]
            status, _, fn = h.json("GET", "/ui/api/functions/echo")
            assert status == 200
            assert fn["event_sources"] == {k: {"configured": False, "items": []} for k in
                                           ("mappings", "triggers", "subscriptions", "schedules")}
        finally:
            h.close()
            front.stop()
