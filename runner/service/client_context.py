"""Lambda's client context (X-Amz-Client-Context): base64 of a JSON object that a mobile SDK
sends with a synchronous Invoke, decoded for the handler's context.client_context (Python) /
clientContext (Node). One decoder for both edges, so the REST header and the gRPC Invoke
field accept and refuse the same values."""

from __future__ import annotations

import base64
import binascii
import json

from runner.errors import InvalidParameter

MAX_CLIENT_CONTEXT_BYTES = 3583  # Lambda's limit on the header


def decode_client_context(raw: str | None, field: str) -> dict | None:
    """The decoded object, or None when `raw` is empty. `field` names where the value came
    from (the header, or the gRPC request field) in the InvalidParameter raised for a value
    over Lambda's size limit or not base64 of a JSON object. Not kept for Event invocations
    (Lambda keeps it for synchronous ones only): callers pass it on only to those."""
    if not raw:
        return None
    if len(raw) > MAX_CLIENT_CONTEXT_BYTES:
        raise InvalidParameter(field, f"over {MAX_CLIENT_CONTEXT_BYTES} bytes")
    try:
        doc = json.loads(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error):
        doc = None
    if not isinstance(doc, dict):
        raise InvalidParameter(field, "must be base64 of a JSON object")
    return doc
