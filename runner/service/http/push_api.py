"""Push endpoints on the HTTP front (docs/events.md):

    POST /events/s3          an S3 event notification ({"Records": [...]}: AWS, MinIO, Ceph)
                             or a SeaweedFS filer webhook event; 202 {"records", "invocations"}
    POST /topics/{T}         publish to topic T: {"Message", "Subject"?, "MessageAttributes"?}
                             (SNS's Publish fields; "message"/"subject"/"attributes" also
                             accepted); 202 {"MessageId", "invocations"}

Errors use the Invoke API's Lambda-style body and status table (status.py): a non-JSON body
400, an oversized one (> 256 KB) 413, an unknown bucket or topic 404; nothing is queued then.
The work (SQLite, fsync'ed enqueues) runs on the front's thread pool, not the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import Executor
from urllib.parse import unquote

from aiohttp import web

from runner.errors import InvalidParameter, ResourceNotFound
from runner.service.http.body import read_body
from runner.service.http.status import ERROR_TYPE_HEADER, describe, lambda_error_body
from runner.triggers.records import MAX_BODY_BYTES, parse_body

PREFIXES = ("/events/", "/topics/")


class PushApi:
    def __init__(self, push, executor: Executor) -> None:
        self.push = push
        self.executor = executor

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith(PREFIXES)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            status, doc = await self._handle(request)
            return web.Response(status=status, body=json.dumps(doc).encode(),
                                headers={"Content-Type": "application/json"})
        except Exception as exc:
            status, etype, message = describe(exc)
            return web.Response(status=status, body=lambda_error_body(status, message),
                                headers={ERROR_TYPE_HEADER: etype,
                                         "Content-Type": "application/json"})

    async def _handle(self, request: web.BaseRequest) -> tuple[int, dict]:
        path = request.rel_url.raw_path.rstrip("/")
        if request.method != "POST":
            raise InvalidParameter("method", f"{request.method} {path}: use POST")
        body = await read_body(request, MAX_BODY_BYTES)
        loop = asyncio.get_running_loop()

        def call(fn, *args, **kw):
            return loop.run_in_executor(self.executor, functools.partial(fn, *args, **kw))

        if path in ("/events/s3", "/events/seaweedfs"):
            out = await call(self.push.triggers.deliver, body)
            return 202, out.as_dict()
        if path.startswith("/topics/") and path.count("/") == 2:
            topic = unquote(path[len("/topics/"):])
            doc = parse_body(body)
            if not isinstance(doc, dict):
                raise InvalidParameter("body", 'must be a JSON object {"Message": ...}')
            message = doc.get("Message", doc.get("message"))
            subject = doc.get("Subject", doc.get("subject"))
            attributes = doc.get("MessageAttributes", doc.get("attributes"))
            out = await call(self.push.topics.publish, topic, message, subject=subject,
                             attributes=attributes)
            return 202, out
        raise ResourceNotFound(f"path: no push endpoint {path}; use POST /events/s3 or "
                               "POST /topics/NAME")
