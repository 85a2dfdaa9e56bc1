"""FilterCriteria's event patterns and the Lambda record shapes (issue 18)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from runner.sources.base import Record
from runner.sources.filters import compile_patterns, matches_any
from runner.sources.shapes import BODY_ENCODING_ATTRIBUTE, dynamodb_record, kinesis_record, sqs_record, typed


def kin(doc) -> dict:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return kinesis_record(Record("1-0", "pk", data, 1.0), "s")


@pytest.mark.parametrize("pattern,doc,expected", [
    ({"data": {"kind": ["order"]}}, {"kind": "order"}, True),
    ({"data": {"kind": ["order"]}}, {"kind": "refund"}, False),
    ({"data": {"kind": [{"prefix": "ord"}]}}, {"kind": "order"}, True),
    ({"data": {"kind": [{"suffix": "der"}]}}, {"kind": "order"}, True),
    ({"data": {"kind": [{"anything-but": ["order"]}]}}, {"kind": "refund"}, True),
    ({"data": {"kind": [{"anything-but": "order"}]}}, {"kind": "order"}, False),
    ({"data": {"n": [{"numeric": [">", 5, "<=", 10]}]}}, {"n": 10}, True),
    ({"data": {"n": [{"numeric": [">", 5, "<=", 10]}]}}, {"n": 11}, False),
    ({"data": {"n": [{"numeric": ["=", 1]}]}}, {"n": True}, False),  # a boolean is no number
    ({"data": {"gone": [{"exists": False}]}}, {"n": 1}, True),
    ({"data": {"n": [{"exists": True}]}}, {"n": 1}, True),
    ({"data": {"tags": ["b"]}}, {"tags": ["a", "b"]}, True),  # any element of an array
    ({"data": {"a": {"b": [1]}}}, {"a": {"b": 1}}, True),
    ({"data": {"a": {"b": [1]}}}, {"a": 1}, False),
    ({"data": {"v": [None]}}, {"v": None}, True),
    ({"data": {"n": [1]}}, {"n": "1"}, False),  # types must agree
    ({"partitionKey": ["pk"]}, {}, False),  # fields of the record itself sit under "kinesis"
    ({"kinesis": {"partitionKey": ["pk"]}}, {}, True),
    ({"data": {"kind": ["x"]}}, b"\xff not json", False),
])
def test_patterns(pattern, doc, expected):
    assert matches_any(compile_patterns((json.dumps(pattern),)), kin(doc)) is expected


def test_any_pattern_matching_is_enough_and_none_means_all():
    patterns = compile_patterns(('{"data": {"k": ["a"]}}', '{"data": {"k": ["b"]}}'))
    assert matches_any(patterns, kin({"k": "b"}))
    assert matches_any([], kin({"k": "z"}))


def test_sqs_body_is_the_text_or_base64_with_an_attribute():
    text = sqs_record(Record("7", "7", "héllo".encode(), 1.5, 3, {"headers": {"h": "v"}}), "q")
    assert text["body"] == "héllo" and text["attributes"]["ApproximateReceiveCount"] == "3"
    assert text["md5OfBody"] == hashlib.md5("héllo".encode()).hexdigest()
    assert text["messageAttributes"]["h"]["stringValue"] == "v"
    assert text["attributes"]["SentTimestamp"] == "1500"
    binary = sqs_record(Record("8", "8", b"\xff\x00", 1.0), "q")
    assert base64.b64decode(binary["body"]) == b"\xff\x00"
    assert binary["messageAttributes"][BODY_ENCODING_ATTRIBUTE]["stringValue"] == "base64"


def test_kinesis_data_is_base64_of_the_exact_bytes():
    r = kin(b"\x00\xffraw")
    assert base64.b64decode(r["kinesis"]["data"]) == b"\x00\xffraw"
    assert r["eventID"].endswith(":1-0") and r["kinesis"]["sequenceNumber"] == "1-0"


def test_dynamodb_typed_json_and_event_names():
    assert typed({"a": [1, "x", None, True, 2.5]}) == {"M": {"a": {"L": [
        {"N": "1"}, {"S": "x"}, {"NULL": True}, {"BOOL": True}, {"N": "2.5"}]}}}
    meta = {"op": "UPDATE", "keys": {"id": 1}, "new": {"id": 1, "v": "b"}, "old": {"id": 1, "v": "a"}}
    r = dynamodb_record(Record("42", "k", b"{}", 1.0, 1, meta), "public.t")
    assert r["eventName"] == "MODIFY" and r["dynamodb"]["SequenceNumber"] == "42"
    assert r["dynamodb"]["OldImage"]["v"] == {"S": "a"} and r["dynamodb"]["NewImage"]["v"] == {"S": "b"}
    gone = dynamodb_record(Record("43", "k", b"{}", 1.0, 1, {**meta, "op": "DELETE", "new": None}), "t")
    assert gone["eventName"] == "REMOVE" and "NewImage" not in gone["dynamodb"]
