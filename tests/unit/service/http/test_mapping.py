"""Route patterns, matching precedence and the payload 2.0 mapping, without a server."""

from __future__ import annotations

import base64
import json

import pytest

from runner import errors
from runner.errors import InvalidParameter, ResourceNotFound
from runner.service.http import apigw
from runner.service.http.router import Router
from runner.service.http.status import status_for
from runner.storage.routes import RouteStore, parse_pattern


@pytest.mark.parametrize("path,fix", [
    ("items", "must start with '/'"),
    ("/a/{p+}/b", "must be the last segment"),
    ("/a/{x}/{x}", "twice"),
    ("/a/b{c}", "whole-segment"),
    ("/a//b", "segment ''"),
])
def test_bad_patterns_name_the_problem(path, fix):
    with pytest.raises(InvalidParameter, match="path") as info:
        parse_pattern(path)
    assert fix in str(info.value)


def test_bad_method(tmp_path):
    store = RouteStore(str(tmp_path))
    try:
        with pytest.raises(InvalidParameter, match="method"):
            store.add("FETCH", "/x", "fn")
        with pytest.raises(ResourceNotFound, match="route list"):
            store.delete("GET", "/x")
    finally:
        store.close()


def test_router_follows_store_changes(tmp_path):
    store = RouteStore(str(tmp_path))
    try:
        router = Router(store.list, lambda: store.version)
        assert router.match("GET", "/a") is None
        store.add("GET", "/{p}", "one")
        assert router.match("GET", "/a").route.function == "one"
        store.add("GET", "/a", "two")
        assert router.match("GET", "/a").route.function == "two"
        store.add("GET", "/a", "three")  # repointed
        assert router.match("GET", "/a").route.function == "three"
        store.delete("GET", "/a")
        assert router.match("GET", "/a").route.function == "one"
    finally:
        store.close()


def req(**kw):
    base = dict(method="POST", raw_path="/p", raw_query="", headers=[], body=b"",
                protocol="HTTP/1.1", source_ip="127.0.0.1", request_id="rid", now=1700000000.123)
    base.update(kw)
    return apigw.HttpRequest(**base)


def test_event_time_fields():
    event = apigw.build_event(req(), "POST /p", {})
    assert event["requestContext"]["time"] == "14/Nov/2023:22:13:20 +0000"
    assert event["requestContext"]["timeEpoch"] == 1700000000123


@pytest.mark.parametrize("ctype,binary", [
    ("text/plain; charset=utf-8", False), ("application/json", False),
    ("application/vnd.api+json", False), ("image/png", True), ("application/octet-stream", True),
])
def test_body_encoding_follows_content_type(ctype, binary):
    event = apigw.build_event(req(headers=[("Content-Type", ctype)], body=b"hello"), "k", {})
    assert event["isBase64Encoded"] is binary
    assert (base64.b64decode(event["body"]) if binary else event["body"].encode()) == b"hello"


def test_undecodable_text_is_sent_as_base64():
    event = apigw.build_event(req(headers=[("Content-Type", "text/plain")], body=b"\xff\xfe"), "k", {})
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


@pytest.mark.parametrize("doc,problem", [
    ({"statusCode": 99}, "not an HTTP status"),
    ({"statusCode": True}, "not an HTTP status"),
    ({"statusCode": 200, "headers": ["x"]}, "headers"),
    ({"statusCode": 200, "cookies": "a=1"}, "cookies"),
    ({"statusCode": 200, "isBase64Encoded": True, "body": "***"}, "base64"),
    ({"statusCode": 101}, "not an HTTP status"),
    ({"statusCode": 200, "headers": {"x": "a\nb"}}, "control character"),
    ({"statusCode": 200, "headers": {"x": "a\u0000b"}}, "control character"),
    ({"statusCode": 200, "headers": {"a:b": "1"}}, "not a valid HTTP field name"),
    ({"statusCode": 200, "cookies": ["a=1\r\nx: y"]}, "control character"),
])
def test_malformed_responses(doc, problem):
    with pytest.raises(errors.MalformedResponse, match=problem):
        apigw.build_response(json.dumps(doc).encode())


def test_hop_by_hop_headers_are_dropped_and_tabs_kept():
    resp = apigw.build_response(json.dumps({"statusCode": 200, "body": "b", "headers": {
        "Connection": "close", "content-length": "99", "Transfer-Encoding": "chunked",
        "X-Tab": "a\tb"}}).encode())
    assert resp.headers == [("X-Tab", "a\tb")]


def test_status_code_as_string_and_non_string_body():
    resp = apigw.build_response(b'{"statusCode": "404", "body": {"k": 1}}')
    assert resp.status == 404 and json.loads(resp.body) == {"k": 1}


@pytest.mark.parametrize("exc,status", [
    (errors.InvalidRequestContent("payload", "x"), 400),
    (errors.InvalidCodePackage("code", "x"), 400),
    (errors.RequestTooLarge("x"), 413),
    (errors.ResourceNotFound("x"), 404),
    (errors.ResourceConflict("x"), 409),
    (errors.TooManyRequests("x"), 429),
    (errors.ServiceUnavailable("x"), 503),
    (errors.InternalError("x"), 500),
    (ValueError("x"), 500),
])
def test_status_table(exc, status):
    assert status_for(exc) == status
