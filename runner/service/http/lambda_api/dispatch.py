"""The operation table of the Lambda REST API and the one handler that serves it.

Every path that starts with a Lambda API date (`/2015-03-31/`, `/2018-10-31/`, ...) belongs to
the API: it is never matched against function routes, so an `ANY /{proxy+}` route cannot
capture a management call, and an operation this server does not serve answers Lambda's error
document (`x-amzn-ErrorType: UnknownOperationException`), not a function's response.

Operations are plain functions `op(api, req) -> (status, body)` that block (they call the
Runner, which reads SQLite and may prepare environments): the handler runs them on the HTTP
front's thread pool. Errors are mapped by status.py's one table, as for Invoke.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from aiohttp import web

from runner.errors import InvalidRequestContent, UnknownOperation
from runner.service.http.body import read_body
from runner.service.http.status import ERROR_TYPE_HEADER, describe, lambda_error_body

API_PATH_RE = re.compile(r"^/20\d\d-\d\d-\d\d(/|$)")
MAX_REQUEST_BYTES = 70 * 1024 * 1024  # a 50 MB zip, base64-encoded, plus the JSON around it


def owns(raw_path: str) -> bool:
    """True if `raw_path` is a Lambda API path (served here, never by function routes)."""
    return API_PATH_RE.match(raw_path) is not None


@dataclass
class Req:
    method: str
    params: dict[str, str]  # path parameters, percent-decoded
    query: dict[str, str]
    body: dict[str, Any]  # the JSON body ({} for operations whose body is not JSON)
    raw: bytes = b""  # the body as sent
    headers: Any = field(default_factory=dict)
    multi_query: dict[str, list[str]] = field(default_factory=dict)  # repeated parameters

    def str(self, key: str, default: str | None = None) -> str | None:
        v = self.body.get(key, default)
        if v is not None and not isinstance(v, str):
            raise InvalidRequestContent(key, f"must be a string, not {type(v).__name__}")
        return v


Operation = Callable[[Any, Req], tuple[int, Any]]


class OperationTable:
    """(method, path pattern) -> operation; patterns use {Name} for one path segment."""

    def __init__(self) -> None:
        self._ops: list[tuple[str, re.Pattern, Operation]] = []

    def add(self, method: str, pattern: str, op: Operation) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/"))
        self._ops.append((method, re.compile(f"^{regex}/?$"), op))

    def find(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        for m, regex, op in self._ops:
            if m != method:
                continue
            hit = regex.match(raw_path)
            if hit is not None:
                return op, {k: unquote(v) for k, v in hit.groupdict().items()}
        return None


def error_response(exc: BaseException) -> web.Response:
    status, etype, message = describe(exc)
    return web.Response(status=status, body=lambda_error_body(status, message),
                        headers={ERROR_TYPE_HEADER: etype, "Content-Type": "application/json"})


class LambdaApiHandler:
    """Serves the operations of `table`; `invoke` handles the invocation paths (invoke_api)."""

    def __init__(self, api, table: OperationTable, executor, invoke) -> None:
        self.api = api
        self.table = table
        self.executor = executor
        self.invoke = invoke

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.rel_url.raw_path
        if raw.endswith("/invocations") or raw.endswith("/invocations/"):
            return await self.invoke(request)
        try:
            found = self.table.find(request.method, raw)
            if found is None:
                raise UnknownOperation(request.method, raw)
            op, params = found
            data = await read_body(request, MAX_REQUEST_BYTES)
            # An invocation's body is the event, not an operation document.
            body = {} if getattr(op, "raw_body", False) else _json_object(data)
            multi = {k: request.query.getall(k) for k in request.query}
            req = Req(request.method, params, dict(request.query), body, data, request.headers,
                      multi)
            if getattr(op, "streams", False):
                # Writes its own response as it goes (streaming.py): a coroutine on the loop,
                # given the executor for its blocking parts.
                return await op(self.api, req, request, self.executor)
            loop = asyncio.get_running_loop()
            status, out = await loop.run_in_executor(self.executor,
                                                     functools.partial(op, self.api, req))
        except Exception as exc:
            return error_response(exc)
        if out is None:
            return web.Response(status=status)
        if isinstance(out, web.StreamResponse):  # an operation that builds its own response
            return out
        return web.Response(status=status, body=json.dumps(out).encode(),
                            headers={"Content-Type": "application/json"})


def _json_object(data: bytes) -> dict[str, Any]:
    if not data.strip():
        return {}
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidRequestContent("body", "is not JSON; send the operation's JSON "
                                    "document") from None
    if not isinstance(doc, dict):
        raise InvalidRequestContent("body", "must be a JSON object")
    return doc
