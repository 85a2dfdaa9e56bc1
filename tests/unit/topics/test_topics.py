"""Topics through a real Runner: each matching subscription is one async invocation of the
recorder guest with SNS's event; a failed publish queues nothing."""

import pytest

from runner.errors import InvalidParameter, ResourceNotFound
from tests.async_helpers import records, wait_for

pytestmark = pytest.mark.usefixtures("guests_see_host_files")


def test_topic_fan_out_with_filter_policies(push_world):
    r, _, topics, rec_dir = push_world
    arn = topics.create("orders")
    assert arn == "arn:aws:sns:us-east-1:000000000000:orders"
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


def test_publish_refusals_queue_nothing(push_world):
    r, _, topics, _ = push_world
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
