"""API Gateway HTTP API payload format 2.0: the event a function route sends, and how the
function's result becomes the HTTP response.

Pure functions over plain data (no aiohttp types), so the mapping is testable on its own.
Field by field it follows the format as AWS documents it ("Working with AWS Lambda proxy
integrations for HTTP APIs"): header names lower-cased, repeated headers and query parameters
joined with commas, cookies moved out of the headers into `cookies`, optional fields
(cookies, queryStringParameters, pathParameters, body) left out when empty, binary bodies
base64-encoded with isBase64Encoded true.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from runner.errors import MalformedResponse
from runner.model import ACCOUNT

# Headers that describe one connection, not the response (RFC 9110 7.6.1), and the framing the
# server computes itself: a function cannot set them, as behind API Gateway. Passed through,
# they broke the stream (a short Content-Length put forged bytes on the wire, a long one hung
# keep-alive clients, Upgrade with a 101 switched protocols).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls but HTAB: CR, LF, NUL, ...

API_ID = "local"  # one API per server; requestContext.apiId

# Bodies of these content types reach the function as text; anything else as base64.
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "application/graphql")


@dataclass
class HttpRequest:
    """What the HTTP server saw, in plain types."""

    method: str
    raw_path: str  # as sent, percent-encoding kept
    raw_query: str  # as sent, without '?'
    headers: list[tuple[str, str]]  # in order, repeated names kept
    body: bytes
    protocol: str  # "HTTP/1.1"
    source_ip: str
    request_id: str
    now: float = field(default_factory=time.time)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    ct = content_type.split(";", 1)[0].strip().lower()
    return (ct.startswith("text/") or ct in _TEXT_TYPES or ct.endswith("+json")
            or ct.endswith("+xml"))


def build_event(req: HttpRequest, route_key: str, path_parameters: dict[str, str]) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in req.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for k, v in parse_qsl(req.raw_query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    domain = (headers.get("host") or "localhost").rsplit(":", 1)[0]  # without the port
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": req.method,
            "path": req.raw_path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": req.request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(req.now)),
        "timeEpoch": int(req.now * 1000),
    }
    if req.body:
        if is_text(headers.get("content-type")):
            try:
                event["body"] = req.body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(req.body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(req.body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


def build_response(payload: bytes) -> HttpResponse:
    """The function's successful result as an HTTP response.

    A dict with `statusCode` is a response document {statusCode, headers, body,
    isBase64Encoded, cookies}; anything else (a non-dict, or a dict without statusCode) is
    API Gateway's shortcut: 200, content-type application/json, the value as body (a string
    value is sent as is, anything else as its JSON text)."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("the function's result is not JSON") from None
    if not (isinstance(value, dict) and "statusCode" in value):
        body = value.encode() if isinstance(value, str) else payload
        return HttpResponse(200, [("content-type", "application/json")], body)
    status = value["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    # 1xx are interim responses of a connection, never a function's final answer.
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise MalformedResponse(f"statusCode {value['statusCode']!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    raw_headers = value.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise MalformedResponse("headers must be an object of name -> value")
    for name, v in raw_headers.items():
        headers.append(_header(str(name), v if isinstance(v, str) else json.dumps(v)))
    cookies = value.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies must be a list of Set-Cookie values")
    headers.extend(_header("set-cookie", str(c)) for c in cookies)
    headers = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP]
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if value.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except ValueError:
                raise MalformedResponse("isBase64Encoded is true but body is not base64") from None
        else:
            data = body.encode()
    else:
        data = json.dumps(body).encode()
    if status in (204, 304):
        data = b""  # these carry no body (RFC 9110 15.3.5, 15.4.5): a body would be a next response
    return HttpResponse(status, headers, data)


def _header(name: str, value: str) -> tuple[str, str]:
    """A header the response may carry, or MalformedResponse: a name that is no token, or a
    value with CR, LF, NUL or another control character (a split or cut response)."""
    if not _TOKEN.match(name):
        raise MalformedResponse(f"header name {name!r} is not a valid HTTP field name")
    if _BAD_VALUE.search(value):
        raise MalformedResponse(f"header {name!r} has a control character (CR, LF, NUL, ...) "
                                "in its value")
    return name, value
