"""The local Task handlers both sides run (reference.cjs holds the same in JavaScript)."""

from __future__ import annotations

import json
from types import SimpleNamespace


class HandlerError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _fail(x):
    raise HandlerError(x.get("errorType") or "CustomError", x.get("message") or "it failed")


HANDLERS = {
    "echo": lambda x: x,
    "double": lambda x: {**x, "v": x["v"] * 2},
    "inc": lambda x: {**x, "v": (x.get("v") or 0) + 1},
    "fail": _fail,
    "len": lambda x: len(x),
}


def invoke(name, payload, qualifier=None):
    """Runner.invoke's shape over HANDLERS: a handler's exception is a function error whose
    errorType is the exception's name, as a Python or Node guest reports it."""
    event = json.loads(payload)
    try:
        out = HANDLERS[name](event)
    except HandlerError as exc:
        doc = {"errorType": exc.error_type, "errorMessage": str(exc), "stackTrace": []}
        return SimpleNamespace(payload=json.dumps(doc).encode(), function_error="Unhandled",
                               executed_version="$LATEST", request_id="r")
    return SimpleNamespace(payload=json.dumps(out).encode(), function_error=None,
                           executed_version="$LATEST", request_id="r")
