"""Triggers through a real Runner: each matching record is one async invocation of the
recorder guest with S3's event; bad input queues nothing."""

import json
import os

import pytest

from runner.errors import (
    InvalidParameter,
    InvalidRequestContent,
    RequestTooLarge,
    ResourceNotFound,
)
from runner.triggers import records as rec
from tests.async_helpers import records, wait_for

pytestmark = pytest.mark.usefixtures("guests_see_host_files")
HERE = os.path.dirname(os.path.abspath(__file__))


def body(*recs):
    return json.dumps({"Records": list(recs)}).encode()


def test_matching_records_invoke_once_each_with_s3_records(push_world):
    r, triggers, _, rec_dir = push_world
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


def test_a_repeated_notification_invokes_once(push_world):
    r, triggers, _, rec_dir = push_world
    triggers.add("all", "thumbs", "uploads")
    with open(os.path.join(HERE, "seaweedfs_webhook.jsonl")) as f:
        create = f.readline().encode()
    first = triggers.deliver(create)
    again = triggers.deliver(create)  # SeaweedFS retried: same sequencer
    assert len(first.invocations) == 1 and again.invocations == []
    wait_for(lambda: records(rec_dir, "thumbs"), "the invocation")
    wait_for(lambda: r.events.pending() == 0, "the queue to drain")
    assert len(records(rec_dir, "thumbs")) == 1


def test_bad_input_queues_nothing(push_world):
    r, triggers, _, _ = push_world
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


def test_overlapping_triggers_are_refused(push_world):
    _, triggers, _, _ = push_world
    triggers.add("a", "thumbs", "uploads", prefix="images/")
    with pytest.raises(InvalidParameter, match="overlap"):
        triggers.add("b", "audit", "uploads", suffix=".jpg")
    triggers.add("c", "audit", "uploads", prefix="docs/")  # disjoint prefixes
    triggers.add("d", "audit", "uploads", events=["s3:ObjectRemoved:*"])  # other types
    with pytest.raises(InvalidParameter, match="bucket"):
        triggers.add("e", "audit", "Bad_Bucket")
    assert [t.name for t in triggers.list()] == ["a", "c", "d"]
