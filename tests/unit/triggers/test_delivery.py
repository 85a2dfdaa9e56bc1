"""Triggers and topics through a real Runner: each match is one async invocation of the
recorder guest with S3's / SNS's event; bad input queues nothing."""

import json
import os

import pytest

from runner import Runner
from runner.errors import (
    InvalidParameter,
    InvalidRequestContent,
    RequestTooLarge,
    ResourceNotFound,
)
from runner.storage.push import SQLitePushStore
from runner.topics.service import Topics
from runner.triggers import records as rec
from runner.triggers.service import Triggers
from tests.async_helpers import RECORDER, records, wait_for

pytestmark = pytest.mark.usefixtures("guests_see_host_files")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def world(tmp_path):
    r = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    for name in ("thumbs", "audit"):
        r.deploy(name, RECORDER, runtime="python", handler="app.handler",
                 environment={"RECORD_DIR": str(rec_dir)})
    store = SQLitePushStore(r.data_dir)
    yield r, Triggers(store, r), Topics(store, r), str(rec_dir)
    store.close()
    r.close()


def body(*recs):
    return json.dumps({"Records": list(recs)}).encode()


def test_matching_records_invoke_once_each_with_s3_records(world):
    r, triggers, _, rec_dir = world
    triggers.add("jpg", "thumbs", "uploads", prefix="photos/", suffix=".jpg")
    triggers.add("gone", "audit", "uploads", events=["s3:ObjectRemoved:*"])
    put = rec.s3_record("uploads", "photos/a b.jpg", "ObjectCreated:Put", size=3, sequencer="01")
    other = rec.s3_record("uploads", "docs/x.pdf", "ObjectCreated:Put", sequencer="02")
    delete = rec.s3_record("uploads", "photos/a b.jpg", "ObjectRemoved:Delete", sequencer="03")
    out = triggers.deliver(body(put, other, delete))
    assert out.records == 3
    assert [(i["trigger"], i["function"]) for i in out.invocations] == [("jpg", "thumbs"),
                                                                       ("gone", "audit")]
    got = wait_for(lambda: records(rec_dir, "thumbs"), "the thumbs invocation")
    assert got == [(out.invocations[0]["request_id"], {"Records": [put]})]
    got = wait_for(lambda: records(rec_dir, "audit"), "the audit invocation")
    assert got[0][1]["Records"][0]["eventName"] == "ObjectRemoved:Delete"


def test_a_repeated_notification_invokes_once(world):
    r, triggers, _, rec_dir = world
    triggers.add("all", "thumbs", "uploads")
    with open(os.path.join(HERE, "seaweedfs_webhook.jsonl")) as f:
        create = f.readline().encode()
    first = triggers.deliver(create)
    again = triggers.deliver(create)  # SeaweedFS retried: same sequencer
    assert len(first.invocations) == 1 and again.invocations == []
    wait_for(lambda: records(rec_dir, "thumbs"), "the invocation")
    wait_for(lambda: r.events.pending() == 0, "the queue to drain")
    assert len(records(rec_dir, "thumbs")) == 1


def test_bad_input_queues_nothing(world):
    r, triggers, _, _ = world
    triggers.add("all", "thumbs", "uploads")
    good = rec.s3_record("uploads", "k", "ObjectCreated:Put")
    with pytest.raises(ResourceNotFound, match="bucket"):
        triggers.deliver(body(good, rec.s3_record("nobody", "k", "ObjectCreated:Put")))
    with pytest.raises(InvalidParameter, match="Records\\[1\\]"):
        triggers.deliver(body(good, {"eventName": "ObjectCreated:Put"}))
    with pytest.raises(InvalidRequestContent):
        triggers.deliver(b"not json")
    with pytest.raises(RequestTooLarge):
        triggers.deliver(b"[" + b" " * 300_000 + b"]")
    triggers.add("broken", "deleted-fn", "archive")
    with pytest.raises(ResourceNotFound, match="deleted-fn"):
        triggers.deliver(body(good, rec.s3_record("archive", "x/1", "ObjectCreated:Put")))
    assert r.events.pending() == 0


def test_overlapping_triggers_are_refused(world):
    _, triggers, _, _ = world
    triggers.add("a", "thumbs", "uploads", prefix="images/")
    with pytest.raises(InvalidParameter, match="overlap"):
        triggers.add("b", "audit", "uploads", suffix=".jpg")
    triggers.add("c", "audit", "uploads", prefix="docs/")  # disjoint prefixes
    triggers.add("d", "audit", "uploads", events=["s3:ObjectRemoved:*"])  # other types
    with pytest.raises(InvalidParameter, match="bucket"):
        triggers.add("e", "audit", "Bad_Bucket")
    assert [t.name for t in triggers.list()] == ["a", "c", "d"]


def test_topic_fan_out_with_filter_policies(world):
    r, _, topics, rec_dir = world
    arn = topics.create("orders")
    assert arn == "arn:aws:sns:local-1:000000000000:orders"
    topics.subscribe("orders", "thumbs")
    topics.subscribe("orders", "audit", policy={"kind": [{"prefix": "big"}]})
    out = topics.publish("orders", "hello", subject="S", attributes={"kind": "small", "n": 2})
    assert [i["function"] for i in out["invocations"]] == ["thumbs"]
    out2 = topics.publish("orders", "again", attributes={"kind": "bigger"})
    assert sorted(i["function"] for i in out2["invocations"]) == ["audit", "thumbs"]
    got = wait_for(lambda: len(records(rec_dir, "thumbs")) == 2 and records(rec_dir, "thumbs"),
                   "two thumbs invocations")
    sns = sorted((g[1]["Records"][0] for g in got), key=lambda x: x["Sns"]["Message"])[1]
    assert sns["EventSource"] == "aws:sns" and sns["Sns"]["Message"] == "hello"
    assert sns["Sns"]["Subject"] == "S" and sns["Sns"]["MessageId"] == out["MessageId"]
    assert sns["Sns"]["TopicArn"] == arn
    assert sns["Sns"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "small"},
                                               "n": {"Type": "Number", "Value": "2"}}
    audit = wait_for(lambda: records(rec_dir, "audit"), "the audit invocation")
    assert [a[1]["Records"][0]["Sns"]["Message"] for a in audit] == ["again"]


def test_publish_refusals_queue_nothing(world):
    r, _, topics, _ = world
    with pytest.raises(ResourceNotFound, match="topic"):
        topics.publish("nope", "m")
    topics.create("t")
    topics.subscribe("t", "thumbs")
    topics.subscribe("t", "no-such-function")
    with pytest.raises(ResourceNotFound):
        topics.publish("t", "m")
    with pytest.raises(InvalidParameter, match="message"):
        topics.publish("t", "x" * (256 * 1024 + 1))
    with pytest.raises(InvalidParameter, match="filter_policy"):
        topics.subscribe("t", "thumbs", policy={"a": "b"})
    assert r.events.pending() == 0
