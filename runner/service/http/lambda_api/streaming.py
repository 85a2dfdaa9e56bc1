"""InvokeWithResponseStream (POST /2021-11-15/functions/{name}/response-streaming-invocations),
streamed as it is written (decision 075): the response goes out as Lambda's event stream
(`application/vnd.amazon.eventstream`): PayloadChunk events holding the bytes, each sent as soon
as the handler writes it, then one InvokeComplete event (ErrorCode / ErrorDetails when the
function failed, Sandbox.Timedout for a timeout mid-stream, LogResult with `LogType: Tail`).
Node handlers wrapped in `awslambda.streamifyResponse` write to a response stream whose writes
the runtime forwards as chunk frames (node_bootstrap.js); other handlers' whole response is one
burst of chunks at the end. Plain Invoke of a streaming handler still gets the bytes buffered.

The invocation runs on the executor; its chunks cross to the event loop through `_Feed` (an
asyncio.Queue fed with call_soon_threadsafe). The HTTP response starts with the first chunk or
the end, whichever is first, so a platform error before then (unknown function, throttled) is
an ordinary error response. A client that goes away mid-stream closes the feed: later chunks
are dropped and the invocation runs to its end, leaving the environment reusable.

The event-stream encoding (the AWS binary framing SDKs decode): each message is a prelude
(total length, headers length, CRC32 of those 8 bytes), headers (name length, name, type 7 =
string, value length, value), the payload and a CRC32 of everything before it.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import struct
import zlib

from aiohttp import web

from runner.errors import InvalidParameter
from runner.invocation_record import check_payload, new_request_id
from runner.model import MAX_PAYLOAD_BYTES
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.functions import function_name
from runner.service.http.status import describe

CHUNK_BYTES = 64 * 1024


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v


def event_message(event_type: str, content_type: str, payload: bytes) -> bytes:
    headers = b"".join(_header(k, v) for k, v in (
        (":event-type", event_type), (":content-type", content_type), (":message-type", "event")))
    prelude = struct.pack("!II", 12 + len(headers) + len(payload) + 4, len(headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack("!I", zlib.crc32(body))


class _Feed:
    """Chunks from the invoking thread to the event loop. `put` may be called from any thread;
    after `close` (the client left) it drops what it is given. The queue is unbounded: the
    invoking thread never waits on a slow client, and the stream's size is bounded (200 MB,
    MAX_STREAMED_RESPONSE_BYTES) by the environment."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False

    def put(self, item: tuple) -> None:
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is stopping, nobody reads
            self.closed = True

    def close(self) -> None:
        self.closed = True


def _run(api, name: str, payload: bytes, qualifier: str | None, request_id: str, feed: _Feed):
    """On the executor: the invocation, its chunks and version into `feed`, then ("end",)."""
    try:
        def invoke():
            return api.runner.invoke_stream(
                name, payload, lambda chunk: feed.put(("chunk", chunk)), qualifier=qualifier,
                request_id=request_id, started=lambda version: feed.put(("version", version)))
        if api.invocations is not None:
            with api.invocations:  # past the ceiling: TooManyRequestsException at once
                return invoke()
        return invoke()
    finally:
        feed.put(("end",))


def complete_document(result, tail: bool) -> bytes:
    done: dict = {}
    if result.function_error:
        done["ErrorCode"] = (result.error or {}).get("errorType", "Unhandled")
        done["ErrorDetails"] = result.payload.decode("utf-8", "replace")
    if tail:
        done["LogResult"] = base64.b64encode(result.log_tail()).decode()
    return json.dumps(done).encode()


async def invoke_with_response_stream(api, req: Req, request: web.BaseRequest, executor):
    name, qualifier = function_name(req)
    itype = req.headers.get("X-Amz-Invocation-Type", "RequestResponse")
    if itype not in ("RequestResponse", "DryRun"):
        raise InvalidParameter("X-Amz-Invocation-Type", f"{itype!r} is not RequestResponse or "
                               "DryRun (streaming has no Event invocations)")
    payload = req.raw
    if len(payload) > MAX_PAYLOAD_BYTES:
        check_payload(payload)  # RequestTooLarge with Lambda's message
    loop = asyncio.get_running_loop()
    if itype == "DryRun":
        await loop.run_in_executor(executor, functools.partial(
            api.runner.check_invoke, name, payload, qualifier=qualifier))
        return web.Response(status=204)
    rid = new_request_id()
    feed = _Feed(loop)
    fut = loop.run_in_executor(executor, _run, api, name, payload, qualifier, rid, feed)
    version = ""
    response: web.StreamResponse | None = None

    async def start() -> web.StreamResponse:
        out = web.StreamResponse(status=200, headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amz-Executed-Version": version, "x-amzn-RequestId": rid})
        await out.prepare(request)
        return out

    try:
        while True:
            item = await feed.queue.get()
            if item[0] == "end":
                break
            if item[0] == "version":
                version = item[1]
                continue
            response = response or await start()
            chunk = item[1]
            for i in range(0, len(chunk), CHUNK_BYTES):
                await response.write(event_message("PayloadChunk", "application/octet-stream",
                                                   chunk[i:i + CHUNK_BYTES]))
        try:
            result = await fut
        except Exception as exc:
            if response is None:
                raise  # nothing sent yet: the dispatcher answers with the error
            # Already streaming (a platform fault after chunks went out): end the stream
            # with the fault named, as a failed invocation would.
            _, etype, message = describe(exc)
            await response.write(event_message("InvokeComplete", "application/json", json.dumps(
                {"ErrorCode": etype, "ErrorDetails": message}).encode()))
            await response.write_eof()
            return response
        response = response or await start()
        await response.write(event_message("InvokeComplete", "application/json", complete_document(
            result, req.headers.get("X-Amz-Log-Type") == "Tail")))
        await response.write_eof()
        return response
    except BaseException as exc:
        # The client went away (a write failed, or the handler task was cancelled): drop the
        # chunks still to come; the invocation finishes on the executor regardless.
        feed.close()
        if not fut.done():
            fut.add_done_callback(_discard)
        if response is not None and isinstance(exc, Exception):
            return response  # begun: nothing else can be sent on this connection
        raise


def _discard(fut) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved, so asyncio does not log it as never retrieved


invoke_with_response_stream.raw_body = True  # type: ignore[attr-defined]
invoke_with_response_stream.streams = True  # type: ignore[attr-defined]


def register(table: OperationTable) -> None:
    table.add("POST", "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
              invoke_with_response_stream)
