"""Reading a request body with a size limit, without trusting Content-Length."""

from __future__ import annotations

from aiohttp import web

from runner.errors import RequestTooLarge


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body, or RequestTooLarge as soon as it is known to exceed `limit` bytes
    (the rest is not read: the connection is closed after the error response)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestTooLarge(
            f"payload: {declared} bytes exceeds the {limit}-byte limit; send a smaller request")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(
                f"payload: more than {limit} bytes; send a smaller request")
        chunks.append(chunk)
    return b"".join(chunks)
