"""Function routes over real HTTP: every route form, precedence, the API Gateway payload 2.0
event, the response mapping and the error statuses."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest

from runner.cli.main import main as cli_main
from tests.integration.http_fixtures import Http, hc, http_server  # noqa: F401 (fixtures)

WEBAPP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guests", "webapp")


@pytest.fixture
def app(http_server):
    runner = http_server[0]
    runner.deploy("web", WEBAPP, runtime="python", handler="app.handler", timeout_s=1)
    return runner


def route(runner, method, path, fn="web"):
    runner.routes.add(method, path, fn)


# ----------------------------------------------------------------------------- route forms


def test_literal_route(app, hc):
    route(app, "GET", "/hello")
    status, headers, event = hc.json("GET", "/hello")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert event["routeKey"] == "GET /hello"
    assert "pathParameters" not in event
    assert hc.json("GET", "/hello/more")[0] == 404
    assert hc.json("POST", "/hello")[0] == 404  # method must match


def test_root_route(app, hc):
    route(app, "GET", "/")
    status, _, event = hc.json("GET", "/")
    assert status == 200 and event["rawPath"] == "/" and event["routeKey"] == "GET /"


def test_param_route(app, hc):
    route(app, "GET", "/users/{user}/orders/{order}")
    status, _, event = hc.json("GET", "/users/ada/orders/7")
    assert status == 200
    assert event["pathParameters"] == {"user": "ada", "order": "7"}
    assert event["routeKey"] == "GET /users/{user}/orders/{order}"
    assert hc.json("GET", "/users/ada/orders")[0] == 404  # a param is exactly one segment


def test_param_values_are_decoded(app, hc):
    route(app, "GET", "/files/{name}")
    _, _, event = hc.json("GET", "/files/a%20b")
    assert event["pathParameters"] == {"name": "a b"}
    assert event["rawPath"] == "/files/a%20b"


def test_greedy_route(app, hc):
    route(app, "GET", "/static/{proxy+}")
    status, _, event = hc.json("GET", "/static/css/site/main.css")
    assert status == 200
    assert event["pathParameters"] == {"proxy": "css/site/main.css"}
    assert hc.json("GET", "/static")[0] == 404  # greedy needs at least one segment
    assert hc.json("GET", "/static/")[0] == 404


def test_any_method_route(app, hc):
    route(app, "ANY", "/any")
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        status, _, event = hc.json(method, "/any")
        assert status == 200, method
        assert event["requestContext"]["http"]["method"] == method
        assert event["routeKey"] == "ANY /any"


def test_most_specific_route_wins(app, hc):
    route(app, "ANY", "/{proxy+}")
    route(app, "GET", "/items/{id}")
    route(app, "GET", "/items/special")
    route(app, "ANY", "/items/{id}")
    assert hc.json("GET", "/items/special")[2]["routeKey"] == "GET /items/special"
    assert hc.json("GET", "/items/5")[2]["routeKey"] == "GET /items/{id}"
    assert hc.json("DELETE", "/items/5")[2]["routeKey"] == "ANY /items/{id}"
    assert hc.json("GET", "/other/deep/path")[2]["routeKey"] == "ANY /{proxy+}"


def test_unknown_route_is_404_json(app, hc):
    status, headers, body = hc.json("GET", "/nothing/here")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert body == {"message": "Not Found"}


def test_route_to_missing_function_is_404(app, hc):
    route(app, "GET", "/ghost", fn="no-such-function")
    status, _, body = hc.json("GET", "/ghost")
    assert status == 404
    assert "no-such-function" in body["message"]


def test_routes_via_cli_and_grpc(http_server, capsys):
    runner, address, port = http_server
    runner.deploy("web", WEBAPP, runtime="python", handler="app.handler")
    assert cli_main(["route", "add", "--address", address, "get", "/cli/{x}", "web"]) == 0
    assert "GET /cli/{x} -> web" in capsys.readouterr().out
    assert cli_main(["route", "list", "--address", address, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["path"], r["function"]) for r in listed] == [("GET", "/cli/{x}", "web")]
    c = Http(port)
    try:
        assert c.json("GET", "/cli/1")[2]["pathParameters"] == {"x": "1"}
        assert cli_main(["route", "delete", "--address", address, "GET", "/cli/{x}"]) == 0
        assert c.json("GET", "/cli/1")[0] == 404
    finally:
        c.close()
    assert cli_main(["route", "add", "--address", address, "GET", "/a/{p+}/b", "web"]) == 2
    assert "greedy" in capsys.readouterr().err


def test_routes_are_durable(tmp_path):
    from runner import Runner

    with Runner(str(tmp_path / "d")) as r:
        r.routes.add("POST", "/keep/{id}", "web")
    with Runner(str(tmp_path / "d")) as r:
        assert [(x.method, x.path, x.function) for x in r.routes.list()] == [
            ("POST", "/keep/{id}", "web")]


# ----------------------------------------------------------------------------- the event


def test_payload_2_0_event(app, hc):
    route(app, "GET", "/shape/{id}")
    status, _, event = hc.json(
        "GET", "/shape/42?b=2&a=1&a=3&empty=",
        headers=[("X-Custom", "one"), ("x-custom", "two"), ("User-Agent", "test-agent/1"),
                 ("Cookie", "s=1; t=2"), ("Cookie", "u=3")])
    assert status == 200
    # The keys of `sam local generate-event apigateway http-api-proxy` (SAM's HttpApi.json),
    # without stageVariables and requestContext.authentication/authorizer, which belong to
    # features the runner does not have, and without body, as this request has none.
    assert set(event) == {"version", "routeKey", "rawPath", "rawQueryString", "cookies",
                          "headers", "queryStringParameters", "requestContext",
                          "isBase64Encoded", "pathParameters"}
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /shape/{id}"
    assert event["rawPath"] == "/shape/42"
    assert event["rawQueryString"] == "b=2&a=1&a=3&empty="
    assert event["cookies"] == ["s=1", "t=2", "u=3"]
    assert event["headers"]["x-custom"] == "one,two"
    assert event["headers"]["user-agent"] == "test-agent/1"
    assert all(k == k.lower() for k in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["queryStringParameters"] == {"a": "1,3", "b": "2", "empty": ""}
    assert event["pathParameters"] == {"id": "42"}
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert set(ctx) == {"accountId", "apiId", "domainName", "domainPrefix", "http", "requestId",
                        "routeKey", "stage", "time", "timeEpoch"}
    assert ctx["accountId"] == "000000000000"
    assert ctx["domainName"] == "127.0.0.1"
    assert ctx["http"] == {"method": "GET", "path": "/shape/42", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "test-agent/1"}
    assert ctx["routeKey"] == "GET /shape/{id}" and ctx["stage"] == "$default"
    assert time.strptime(ctx["time"], "%d/%b/%Y:%H:%M:%S +0000")
    assert abs(ctx["timeEpoch"] / 1000 - time.time()) < 3600
    assert len(ctx["requestId"]) == 36


def test_event_without_optional_fields(app, hc):
    route(app, "GET", "/plain")
    _, _, event = hc.json("GET", "/plain")
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body"):
        assert absent not in event
    assert event["rawQueryString"] == ""


def test_text_and_binary_bodies(app, hc):
    route(app, "POST", "/echo-body")
    text_order = json.dumps({"return": "ok"})
    _, _, body = hc.request("POST", "/echo-body", text_order,
                              {"Content-Type": "application/json"})
    assert body == b"ok"
    blob = bytes(range(256))
    status, _, body = hc.json("POST", "/echo-body", blob,
                                {"Content-Type": "application/octet-stream"})
    assert status == 200
    assert base64.b64decode(body["received_b64"]) == blob


# ----------------------------------------------------------------------------- the response


def post(client, path, order):
    return client.request("POST", path, json.dumps(order), {"Content-Type": "application/json"})


def test_response_document(app, hc):
    route(app, "POST", "/r")
    status, headers, body = post(hc, "/r", {"return": {
        "statusCode": 201, "headers": {"X-Made": "yes", "Content-Type": "text/plain"},
        "cookies": ["a=1; Path=/", "b=2"], "body": "created"}})
    assert status == 201
    assert headers["x-made"] == "yes"
    assert headers["content-type"] == "text/plain"
    assert headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]
    assert body == b"created"


def test_base64_response_body(app, hc):
    route(app, "POST", "/r")
    blob = bytes(range(200, 256))
    status, _, body = post(hc, "/r", {"return": {
        "statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(blob).decode(),
        "headers": {"content-type": "application/octet-stream"}}})
    assert status == 200 and body == blob


@pytest.mark.parametrize("value,expected", [
    ({"message": "hi"}, b'{"message": "hi"}'),
    ([1, 2], b"[1, 2]"),
    (7, b"7"),
    ("plain words", b"plain words"),
])
def test_bare_values_become_200_json(app, hc, value, expected):
    route(app, "POST", "/r")
    status, headers, body = post(hc, "/r", {"return": value})
    assert status == 200
    assert headers["content-type"] == "application/json"
    if isinstance(value, str):
        assert body == expected  # API Gateway sends a string result as is
    else:
        assert json.loads(body) == json.loads(expected)


def test_function_error_is_502(app, hc):
    route(app, "POST", "/r")
    status, headers, body = post(hc, "/r", {"raise": "boom"})
    assert status == 502
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "Internal Server Error"}


def test_malformed_response_is_502(app, hc):
    route(app, "POST", "/r")
    status, _, body = post(hc, "/r", {"return": {"statusCode": "teapot"}})
    assert status == 502 and json.loads(body)["message"] == "Internal Server Error"


@pytest.mark.parametrize("doc", [
    {"statusCode": 101, "headers": {"Upgrade": "h2c", "Connection": "Upgrade"}},
    {"statusCode": 200, "headers": {"X-Split": "a\r\nX-Forged: 1"}, "body": "x"},
    {"statusCode": 200, "headers": {"X-Nul": "a\u0000b"}, "body": "x"},
    {"statusCode": 200, "headers": {"Bad Name": "x"}, "body": "x"},
    {"statusCode": 200, "cookies": ["a=1\r\nX-Forged: 1"], "body": "x"},
])
def test_responses_that_would_break_the_stream_are_502(app, hc, doc):
    route(app, "POST", "/r")
    status, headers, body = post(hc, "/r", {"return": doc})
    assert status == 502 and json.loads(body) == {"message": "Internal Server Error"}
    assert "x-forged" not in headers
    # The connection is still in step: the next request on it gets its own answer.
    status, _, body = post(hc, "/r", {"return": {"statusCode": 200, "body": "next"}})
    assert (status, body) == (200, b"next")


def test_hop_by_hop_and_framing_headers_are_the_servers(app, hc):
    route(app, "POST", "/r")
    status, headers, body = post(hc, "/r", {"return": {"statusCode": 200, "body": "twelve bytes", "headers": {
        "Content-Length": "3", "Transfer-Encoding": "chunked", "Connection": "close",
        "Keep-Alive": "timeout=1", "TE": "trailers", "Trailer": "X-T", "Upgrade": "h2c",
        "X-Kept": "yes"}}})
    assert status == 200 and body == b"twelve bytes"
    assert headers["content-length"] == "12" and headers["x-kept"] == "yes"
    for name in ("transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade"):
        assert name not in headers, name
    status, _, body = post(hc, "/r", {"return": {"statusCode": 200, "body": "again"}})
    assert (status, body) == (200, b"again")  # the connection was kept and stayed in step
    status, headers, body = post(hc, "/r", {"return": {"statusCode": 204, "body": "dropped"}})
    assert status == 204 and body == b""


def test_timeout_is_504(app, hc):
    route(app, "POST", "/r")
    status, _, body = post(hc, "/r", {"sleep": 5})
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}


def test_throttled_is_429(http_server):
    runner, _, port = http_server
    runner.deploy("web", WEBAPP, runtime="python", handler="app.handler", timeout_s=10,
                  concurrency=1)
    runner.routes.add("POST", "/slow", "web")
    first = Http(port)
    second = Http(port)
    try:
        # Warm the one environment first, so the slow request below holds it at once.
        assert post(first, "/slow", {"return": 1})[0] == 200
        done = threading.Event()

        def hold():
            # The holder itself may lose the race for the environment: it tries until it got
            # the environment and slept in it.
            while post(first, "/slow", {"sleep": 3})[0] == 429:
                pass
            done.set()

        holder = threading.Thread(target=hold)
        holder.start()
        statuses = []
        while not done.is_set() and 429 not in statuses:
            status, headers, body = post(second, "/slow", {"return": 2})
            statuses.append(status)
        holder.join()
        assert 429 in statuses
        assert json.loads(body) == {"message": "Too Many Requests"}
    finally:
        first.close()
        second.close()


def test_body_over_the_limit_is_413(app, hc):
    route(app, "POST", "/r")
    status, _, body = hc.request("POST", "/r", b"x" * (6 * 1024 * 1024 + 1),
                                 {"Content-Type": "application/octet-stream"})
    assert status == 413
    assert "limit" in json.loads(body)["message"]
