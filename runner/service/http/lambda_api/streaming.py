"""InvokeWithResponseStream (POST /2021-11-15/functions/{name}/response-streaming-invocations),
answered *buffered*: the invocation runs to its end, then its response goes out as Lambda's
event stream (`application/vnd.amazon.eventstream`): PayloadChunk events holding the bytes,
then one InvokeComplete event (ErrorCode / ErrorDetails when the function failed, LogResult
with `LogType: Tail`). SDKs read it exactly as Lambda's; what they do not get is the first
bytes before the function ends (no time-to-first-byte gain). Node handlers wrapped in
`awslambda.streamifyResponse` write to a response stream that the runtime collects
(node_bootstrap.js), so they run unchanged, here and through plain Invoke.

The event-stream encoding (the AWS binary framing SDKs decode): each message is a prelude
(total length, headers length, CRC32 of those 8 bytes), headers (name length, name, type 7 =
string, value length, value), the payload and a CRC32 of everything before it.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib

from aiohttp import web

from runner.errors import InvalidParameter
from runner.invocation_record import check_payload
from runner.model import MAX_PAYLOAD_BYTES
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.functions import function_name

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


def invoke_with_response_stream(api, req: Req):
    name, qualifier = function_name(req)
    itype = req.headers.get("X-Amz-Invocation-Type", "RequestResponse")
    if itype not in ("RequestResponse", "DryRun"):
        raise InvalidParameter("X-Amz-Invocation-Type", f"{itype!r} is not RequestResponse or "
                               "DryRun (streaming has no Event invocations)")
    payload = req.raw
    if len(payload) > MAX_PAYLOAD_BYTES:
        check_payload(payload)  # RequestTooLarge with Lambda's message
    if itype == "DryRun":
        api.runner.check_invoke(name, payload, qualifier=qualifier)
        return 204, None
    if api.invocations is not None:
        with api.invocations:  # past the ceiling: TooManyRequestsException at once
            result = api.runner.invoke(name, payload, qualifier=qualifier)
    else:
        result = api.runner.invoke(name, payload, qualifier=qualifier)
    parts = [event_message("PayloadChunk", "application/octet-stream",
                           result.payload[i:i + CHUNK_BYTES])
             for i in range(0, len(result.payload), CHUNK_BYTES)] if not result.function_error else []
    done: dict = {}
    if result.function_error:
        done["ErrorCode"] = (result.error or {}).get("errorType", "Unhandled")
        done["ErrorDetails"] = result.payload.decode("utf-8", "replace")
    if req.headers.get("X-Amz-Log-Type") == "Tail":
        done["LogResult"] = base64.b64encode(result.log_tail()).decode()
    parts.append(event_message("InvokeComplete", "application/json", json.dumps(done).encode()))
    return 200, web.Response(status=200, body=b"".join(parts), headers={
        "Content-Type": "application/vnd.amazon.eventstream",
        "X-Amz-Executed-Version": result.executed_version,
        "x-amzn-RequestId": result.request_id})


invoke_with_response_stream.raw_body = True  # type: ignore[attr-defined]


def register(table: OperationTable) -> None:
    table.add("POST", "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
              invoke_with_response_stream)
