"""Reading a request body with a size limit, without trusting Content-Length."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web import RequestPayloadError

from runner.errors import InvalidRequestContent, RequestTooLarge

# Where a body read before dispatch (to verify a SigV4 signature over it) is kept for the handler.
READ_KEY = web.RequestKey("runner.body", bytes)


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body, or RequestTooLarge as soon as it is known to exceed `limit` bytes
    (the rest is not read: the connection is closed after the error response)."""
    if READ_KEY in request:
        # Already read (the stream is consumed): the handler's own limit still applies.
        body = request[READ_KEY]
        if len(body) > limit:
            raise RequestTooLarge(f"payload: {len(body)} bytes exceeds the {limit}-byte limit; "
                                  "send a smaller request")
        return body
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestTooLarge(
            f"payload: {declared} bytes exceeds the {limit}-byte limit; send a smaller request")
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await request.content.readany()
        except RequestPayloadError as exc:
            # aiohttp decodes Content-Encoding (gzip, deflate, br) as it reads: a body that is
            # not what its header says fails here, the client's mistake, not ours. The rest of
            # it cannot be read either: it counts as consumed (else aiohttp would try to drain
            # it after the response and log the same failure again) and the connection closes
            # once the error response is sent (the parser's place in the stream is lost).
            request.content.feed_eof()
            request.protocol.close()
            raise InvalidRequestContent(
                "body", f"cannot be decoded as its Content-Encoding "
                f"{request.headers.get('Content-Encoding', '')!r} says ({exc}); send it "
                "encoded that way or drop the header") from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(
                f"payload: more than {limit} bytes; send a smaller request")
        chunks.append(chunk)
    return b"".join(chunks)
