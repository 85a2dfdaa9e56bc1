"""S3 notification rules and record building, including the SeaweedFS filer webhook as a real
SeaweedFS 4.x server sends it (seaweedfs_webhook.jsonl: an upload then a delete of
"photos/my cat.jpg" in bucket "uploads")."""

import json
import os

import pytest

from runner.errors import InvalidParameter, InvalidRequestContent, RequestTooLarge
from runner.triggers import records as rec
from runner.triggers import rules

HERE = os.path.dirname(os.path.abspath(__file__))


def sample():
    with open(os.path.join(HERE, "seaweedfs_webhook.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_event_types_and_wildcards():
    assert rules.type_matches("s3:ObjectCreated:*", "ObjectCreated:Put")
    assert rules.type_matches("s3:ObjectCreated:Copy", "ObjectCreated:Copy")
    assert not rules.type_matches("s3:ObjectCreated:Put", "ObjectCreated:Copy")
    assert not rules.type_matches("s3:ObjectRemoved:*", "ObjectCreated:Put")
    for bad in ("s3:ObjectCreated", "ObjectCreated:*", "s3:ObjectCreated:Delete", "s3:Foo:*"):
        with pytest.raises(InvalidParameter, match="events"):
            rules.check_event_type(bad)


@pytest.mark.parametrize("a,b,overlap", [
    (("", ""), ("", ""), True),
    (("images/", ""), ("", ".jpg"), True),
    (("images/", ".jpg"), ("images/raw/", ".jpg"), True),
    (("images/", ""), ("docs/", ""), False),
    (("", ".jpg"), ("", ".png"), False),
    (("", "large.jpg"), ("", ".jpg"), True),
])
def test_filter_overlap_as_s3(a, b, overlap):
    assert rules.filters_overlap(*a, *b) is overlap


def test_seaweedfs_create_and_delete_become_s3_records():
    create, delete = sample()
    (r,) = rec.seaweedfs_records(create)
    assert r["eventSource"] == "aws:s3" and r["eventVersion"] == "2.1"
    assert r["eventName"] == "ObjectCreated:Put"
    assert r["s3"]["bucket"] == {"name": "uploads", "ownerIdentity": {"principalId": "runner"},
                                 "arn": "arn:aws:s3:::uploads"}
    obj = r["s3"]["object"]
    assert obj["key"] == "photos/my+cat.jpg"  # URL-encoded as S3 does: space -> '+'
    assert obj["size"] == 11
    assert obj["eTag"] == "5eb63bbbe01eeed093cb22bb8f5acdc3"  # md5("hello world")
    assert len(obj["sequencer"]) == 16 and int(obj["sequencer"], 16) > 0
    assert r["eventTime"].endswith("Z")
    (d,) = rec.seaweedfs_records(delete)
    assert d["eventName"] == "ObjectRemoved:Delete" and "size" not in d["s3"]["object"]
    assert rec.decoded_key(d) == "photos/my cat.jpg"


def test_seaweedfs_directories_and_system_entries_are_not_objects():
    dir_event = {"event_type": "create", "key": "/buckets/uploads/photos",
                 "message": {"new_entry": {"name": "photos", "is_directory": True}}}
    system = {"event_type": "create", "key": "/buckets/.system/owners/.complete",
              "message": {"new_entry": {"name": ".complete", "attributes": {}}}}
    outside = {"event_type": "create", "key": "/etc/x", "message": {"new_entry": {"name": "x"}}}
    assert rec.seaweedfs_records(dir_event) == rec.seaweedfs_records(system) == \
        rec.seaweedfs_records(outside) == []


def test_seaweedfs_rename_is_a_delete_and_a_copy():
    create, _ = sample()
    entry = create["message"]["new_entry"]
    doc = {"event_type": "rename", "key": "/buckets/uploads/a.jpg",
           "message": {"old_entry": entry, "new_entry": dict(entry, name="b.jpg"),
                       "new_parent_path": "/buckets/uploads/done"}}
    names = [(r["eventName"], rec.decoded_key(r)) for r in rec.seaweedfs_records(doc)]
    assert names == [("ObjectRemoved:Delete", "a.jpg"), ("ObjectCreated:Copy", "done/b.jpg")]


def test_s3_body_checks():
    r = rec.s3_record("b", "k", "ObjectCreated:Put")
    assert rec.s3_records({"Records": [r]}) == [r]
    assert rec.s3_records({"Event": "s3:TestEvent", "Bucket": "b"}) == []
    minio = dict(r, eventName="s3:ObjectCreated:Put")
    assert rec.s3_records({"Records": [minio]})[0]["eventName"] == "ObjectCreated:Put"
    for body, field in [({}, "Records"), ({"Records": [{}]}, "Records\\[0\\].s3"),
                        ({"Records": [dict(r, eventName=5)]}, "eventName"),
                        ({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {},
                                       "object": {"key": "k"}}}]}, "bucket.name")]:
        with pytest.raises(InvalidParameter, match=field):
            rec.s3_records(body)
    with pytest.raises(InvalidRequestContent, match="not JSON"):
        rec.parse_body(b"<xml/>")
    with pytest.raises(RequestTooLarge, match="262144"):
        rec.parse_body(b" " * (256 * 1024 + 1))
