"""The Lambda Invoke REST API: POST /2015-03-31/functions/{FunctionName}/invocations.

Served so that existing clients (boto3, the AWS CLI, other SDKs) work unchanged when pointed at
this server with `endpoint_url`. Request signatures are accepted without being checked: the
server listens on loopback only and has no authentication of its own.

    X-Amz-Invocation-Type  RequestResponse (default) | Event | DryRun
    X-Amz-Log-Type         None (default) | Tail
    ?Qualifier=            version or alias (also accepted as name:qualifier or in an ARN)

Responses carry X-Amz-Executed-Version, X-Amz-Function-Error (when the function failed; the
body is then Lambda's error document), X-Amz-Log-Result (base64 of the last 4 KB of the log,
with Tail) and x-amzn-RequestId. Platform errors use status.py's one table.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
from concurrent.futures import Executor
from urllib.parse import unquote

from aiohttp import web

from runner.errors import InvalidParameter
from runner.invocation.async_dispatcher import MAX_ASYNC_PAYLOAD_BYTES
from runner.invocation.trace import from_headers
from runner.model import MAX_PAYLOAD_BYTES
from runner.service.admission import Slots
from runner.service.client_context import decode_client_context
from runner.service.http.body import read_body
from runner.service.http.status import ERROR_TYPE_HEADER, describe, lambda_error_body

PATH_RE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
PREFIX = "/2015-03-31/functions/"
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


def split_function_name(raw: str, query_qualifier: str | None) -> tuple[str, str | None]:
    """(name, qualifier) from a FunctionName as Lambda accepts it: `name`, `name:qualifier`,
    `123456789012:function:name[:qualifier]` or a full ARN."""
    text = unquote(raw)
    if "function:" in text:
        text = text.split("function:", 1)[1]
    name, sep, qualifier = text.partition(":")
    derived = qualifier if sep else None
    if derived and query_qualifier and derived != query_qualifier:
        raise InvalidParameter(
            "Qualifier", f"the qualifier in the function name ({derived!r}) does not match "
            f"?Qualifier={query_qualifier!r}; give one of them")
    return name, derived or query_qualifier or None


class InvokeApi:
    def __init__(self, runner, executor: Executor, invocations: Slots) -> None:
        self.runner = runner
        self.executor = executor
        self.invocations = invocations  # shared with the function routes (admission.py)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except Exception as exc:  # every failure becomes Lambda's error response
            status, etype, message = describe(exc)
            return web.Response(status=status, body=lambda_error_body(status, message),
                                headers={ERROR_TYPE_HEADER: etype,
                                         "Content-Type": "application/json"})

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        m = PATH_RE.match(request.rel_url.raw_path)
        if m is None or request.method != "POST":
            raise InvalidParameter(
                "path", f"{request.method} {request.rel_url.raw_path} is not an operation of "
                "this API; use POST /2015-03-31/functions/NAME/invocations")
        name, qualifier = split_function_name(m.group(1), request.query.get("Qualifier"))
        itype = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if itype not in INVOCATION_TYPES:
            raise InvalidParameter("X-Amz-Invocation-Type",
                                   f"{itype!r} is not one of {', '.join(INVOCATION_TYPES)}")
        log_type = request.headers.get("X-Amz-Log-Type", "None")
        if log_type not in ("None", "Tail"):
            raise InvalidParameter("X-Amz-Log-Type", f"{log_type!r} is not None or Tail")
        client_context = decode_client_context(request.headers.get("X-Amz-Client-Context"),
                                               "X-Amz-Client-Context")
        limit = MAX_ASYNC_PAYLOAD_BYTES if itype == "Event" else MAX_PAYLOAD_BYTES
        body = await read_body(request, limit)
        trace_id = from_headers(request.headers.get("X-Amzn-Trace-Id"),
                                request.headers.get("traceparent"))
        loop = asyncio.get_running_loop()

        def call(fn, *args, **kw):
            return loop.run_in_executor(self.executor, functools.partial(fn, *args, **kw))

        if itype == "DryRun":
            await call(self.runner.check_invoke, name, body, qualifier=qualifier)
            return web.Response(status=204)
        if itype == "Event":
            # Returns only once the event is durably queued (see storage/events.py).
            rid = await call(self.runner.invoke_async, name, body, qualifier=qualifier,
                             trace_id=trace_id)
            return web.Response(status=202, headers={"x-amzn-RequestId": rid})
        with self.invocations:  # past the ceiling: 429 TooManyRequestsException at once
            result = await call(self.runner.invoke, name, body, qualifier=qualifier,
                                client_context=client_context, trace_id=trace_id)
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": result.executed_version,
            "x-amzn-RequestId": result.request_id,
        }
        if trace_id:
            headers["X-Amzn-Trace-Id"] = trace_id
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if log_type == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result.log_tail()).decode()
        return web.Response(status=200, body=result.payload, headers=headers)
