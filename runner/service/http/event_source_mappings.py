"""Lambda's event source mapping REST API over `EventSources`, for the HTTP front:

    POST   /2015-03-31/event-source-mappings/            CreateEventSourceMapping   202
    GET    /2015-03-31/event-source-mappings/            ListEventSourceMappings    200
                 ?FunctionName=&EventSourceArn=&Marker=&MaxItems=
    GET    /2015-03-31/event-source-mappings/{UUID}      GetEventSourceMapping      200
    PUT    /2015-03-31/event-source-mappings/{UUID}      UpdateEventSourceMapping   202
    DELETE /2015-03-31/event-source-mappings/{UUID}      DeleteEventSourceMapping   202

Documents are `sources/lambda_shape.py`'s; errors are Lambda's (status.py's table, the
`x-amzn-ErrorType` header), so boto3's `create_event_source_mapping` & co. work unchanged.
`runner serve --http-port` mounts `EventSourceMappingsApi(sources).handle` on the HTTP front
for paths starting with PREFIX (HttpFront.mount). Store calls run on `executor` (default: the
event loop's default executor).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Executor

from aiohttp import web

from runner.errors import InvalidParameter, ResourceNotFound
from runner.service.http.status import ERROR_TYPE_HEADER, describe, lambda_error_body
from runner.sources.lambda_shape import mapping_from_lambda, mapping_to_lambda
from runner.sources.manager import EventSources

PREFIX = "/2015-03-31/event-source-mappings"


class EventSourceMappingsApi:
    def __init__(self, sources: EventSources, executor: Executor | None = None) -> None:
        self.sources = sources
        self.executor = executor

    async def handle(self, request: web.BaseRequest) -> web.Response:
        try:
            status, doc = await self._handle(request)
            return web.Response(status=status, body=json.dumps(doc).encode(), content_type="application/json")
        except Exception as exc:
            status, etype, message = describe(exc)
            return web.Response(status=status, body=lambda_error_body(status, message),
                                content_type="application/json", headers={ERROR_TYPE_HEADER: etype})

    async def _handle(self, request: web.BaseRequest) -> tuple[int, dict]:
        rest = request.rel_url.path[len(PREFIX):].strip("/")
        method = request.method
        body = await request.read()

        def call(fn, *args, **kw):
            # The store writes (fsync) and waits for locks: off the event loop.
            return asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kw))

        if not rest:
            if method == "POST":
                m = await call(self.sources.create, **mapping_from_lambda(_json(body)))
                return 202, mapping_to_lambda(m)
            if method == "GET":
                return 200, await call(self._list, request.rel_url.query)
        elif "/" not in rest:
            if method == "GET":
                return 200, mapping_to_lambda(await call(self.sources.get, rest))
            if method == "PUT":
                changes = mapping_from_lambda(_json(body), partial=True)
                return 202, mapping_to_lambda(await call(self.sources.update, rest, **changes))
            if method == "DELETE":
                m = await call(self.sources.delete, rest)
                return 202, {**mapping_to_lambda(m), "State": "Deleting"}
        raise ResourceNotFound(f"no such resource: {method} {request.rel_url.path}")

    def _list(self, query) -> dict:
        function = query.get("FunctionName")
        if function and function.startswith("arn:"):
            function = function.split(":")[6]
        docs = [mapping_to_lambda(m) for m in self.sources.list(function or None)]
        if query.get("EventSourceArn"):
            docs = [d for d in docs if d["EventSourceArn"] == query["EventSourceArn"]]
        try:
            start = int(query.get("Marker") or 0)
            size = int(query.get("MaxItems") or 100)
        except ValueError:
            raise InvalidParameter("Marker", "Marker and MaxItems are integers") from None
        page = docs[start:start + size]
        more = start + size < len(docs)
        return {"EventSourceMappings": page, **({"NextMarker": str(start + size)} if more else {})}


def _json(body: bytes) -> dict:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        raise InvalidParameter("body", "is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("body", "must be a JSON object")
    return doc
