"""Function routes: an HTTP request -> the route's function, with an API Gateway payload 2.0
event -> the function's result as the HTTP response.

Outcomes, as API Gateway answers them (JSON bodies `{"message": ...}`):
    no route matches                   404 Not Found
    the function failed                502 Internal Server Error
    the function timed out             504 Endpoint request timed out
    throttled                          429 Too Many Requests
    result not a valid response        502 (the detail goes to the server log)
    platform errors (unknown function, payload too large, ...) use status.py's table.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from concurrent.futures import Executor

from aiohttp import web

from runner.errors import FunctionTimeout, MalformedResponse, TooManyRequests
from runner.invocation.trace import from_headers
from runner.invocation_record import new_request_id
from runner.model import MAX_PAYLOAD_BYTES
from runner.service.admission import Slots
from runner.service.http import apigw
from runner.service.http.body import read_body
from runner.service.http.router import Router
from runner.service.http.status import describe, gateway_body

log = logging.getLogger(__name__)


def _json(status: int, message: str, request_id: str) -> web.Response:
    return web.Response(status=status, body=gateway_body(message),
                        headers={"Content-Type": "application/json",
                                 "apigw-requestid": request_id})


class FunctionRoutes:
    def __init__(self, runner, executor: Executor, invocations: Slots) -> None:
        self.runner = runner
        self.executor = executor
        self.invocations = invocations  # shared with the Invoke API (admission.py)
        self.router = Router(runner.list_routes, lambda: runner.routes_version)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        rid = new_request_id()
        match = self.router.match(request.method, request.rel_url.raw_path)
        if match is None:
            return _json(404, "Not Found", rid)
        try:
            body = await read_body(request, MAX_PAYLOAD_BYTES)
            peer = request.transport.get_extra_info("peername") if request.transport else None
            req = apigw.HttpRequest(
                method=request.method,
                raw_path=request.rel_url.raw_path,
                raw_query=request.rel_url.raw_query_string,
                headers=list(request.headers.items()),
                body=body,
                protocol=f"HTTP/{request.version.major}.{request.version.minor}",
                source_ip=peer[0] if peer else "",
                request_id=rid,
            )
            event = apigw.build_event(req, match.route.route_key, match.path_parameters)
            payload = json.dumps(event).encode()
            loop = asyncio.get_running_loop()
            with self.invocations:  # past the ceiling: 429 at once, as when throttled
                result = await loop.run_in_executor(self.executor, functools.partial(
                    self.runner.invoke, match.route.function, payload,
                    qualifier=match.route.qualifier or None, request_id=rid,
                    trace_id=from_headers(request.headers.get("X-Amzn-Trace-Id"),
                                          request.headers.get("traceparent"))))
        except TooManyRequests:
            return _json(429, "Too Many Requests", rid)
        except Exception as exc:
            status, _, message = describe(exc)
            return _json(status, message, rid)
        if result.function_error:
            if (result.error or {}).get("errorType") == FunctionTimeout.error_type:
                return _json(504, "Endpoint request timed out", rid)
            return _json(502, "Internal Server Error", rid)
        try:
            resp = apigw.build_response(result.payload)
        except MalformedResponse as exc:
            log.warning("route %s -> %s: malformed function response: %s",
                        match.route.route_key, match.route.function, exc)
            return _json(502, "Internal Server Error", rid)
        out = web.Response(status=resp.status, body=resp.body)
        for name, value in resp.headers:
            out.headers.add(name, value)
        out.headers.setdefault("apigw-requestid", rid)
        return out
