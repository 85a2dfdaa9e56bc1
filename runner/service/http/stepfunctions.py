"""The Step Functions API on the HTTP front: AWS JSON 1.0, `POST /` with
`X-Amz-Target: AWSStepFunctions.<Operation>` (runner/workflows/api.py has the operations).

Served so that boto3's `stepfunctions` client (and the AWS CLI) work when pointed at this
server with `endpoint_url`; signatures are accepted unchecked, as on the Invoke API.
Errors are JSON 1.0's: status 400 (500 for the server's own faults), `x-amzn-ErrorType` and
a body `{"__type": "<Exception>", "message": ...}`, which botocore turns into
`client.exceptions.<Exception>`. StartSyncExecution runs on the thread pool for as long as
the Express execution takes.
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import Executor

from aiohttp import web

from runner.errors import InvalidParameter
from runner.invocation import trace
from runner.service.http.body import read_body
from runner.service.http.status import ERROR_TYPE_HEADER, describe
from runner.workflows import api

TARGET_PREFIX = "AWSStepFunctions."
CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_BODY = 1024 * 1024  # definitions up to 1 MB, as Step Functions allows


def is_stepfunctions(request: web.BaseRequest) -> bool:
    return request.headers.get("X-Amz-Target", "").startswith(TARGET_PREFIX)


class StepFunctionsApi:
    def __init__(self, engine, executor: Executor) -> None:
        self.engine = engine
        self.executor = executor

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            if request.method != "POST":
                raise InvalidParameter("method", "the Step Functions API takes POST /")
            operation = request.headers["X-Amz-Target"][len(TARGET_PREFIX):]
            raw = await read_body(request, MAX_BODY)
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise InvalidParameter("body", "is not JSON") from None
            if operation in ("StartExecution", "StartSyncExecution") and \
                    isinstance(body, dict) and "traceHeader" not in body:
                # The HTTP request's own trace, as for Invoke: StartExecution then runs under it.
                carried = trace.from_headers(request.headers.get("X-Amzn-Trace-Id"),
                                             request.headers.get("traceparent"))
                if carried:
                    body["traceHeader"] = carried
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self.executor, functools.partial(api.call, self.engine, operation, body))
            return web.Response(status=200, body=json.dumps(result).encode(),
                                headers={"Content-Type": CONTENT_TYPE})
        except Exception as exc:  # every failure becomes a JSON 1.0 error
            status, etype, message = describe(exc)
            status = 400 if status < 500 else 500
            return web.Response(status=status,
                                body=json.dumps({"__type": etype, "message": message}).encode(),
                                headers={ERROR_TYPE_HEADER: etype, "Content-Type": CONTENT_TYPE})
