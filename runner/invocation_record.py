"""What one invocation carries in and out: its request id, the payload check every entry point
applies to an event, and the result and REPORT line handed back to the caller.

Split from runner/model.py (function configuration and versions): these records describe a call,
not a function. Nothing here does I/O; the limits come from runner/model.py so that there is one
place for them.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from typing import Any

from runner.errors import InvalidRequestContent, RequestTooLarge
from runner.model import MAX_PAYLOAD_BYTES


@dataclass(slots=True)
class Report:
    """The REPORT line of one invocation, with Lambda's fields (milliseconds, megabytes)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None  # set on cold starts only
    cold_start: bool = False
    xray: str = ""  # Lambda's XRAY suffix of a traced invocation (invocation/trace.py)

    def line(self) -> str:
        s = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_duration_ms} ms\tMemory Size: {self.memory_size_mb} MB\t"
            f"Max Memory Used: {self.max_memory_used_mb} MB"
        )
        if self.init_duration_ms is not None:
            s += f"\tInit Duration: {self.init_duration_ms:.2f} ms"
        if self.xray:
            s += f"\t{self.xray}"
        return s


@dataclass(slots=True)
class InvocationResult:
    """What an invocation returns to the caller. `function_error` is None on success; otherwise
    `payload` is Lambda's error document, JSON-encoded, and `function_error` is "Unhandled"."""

    request_id: str
    payload: bytes
    function_error: str | None
    error: dict[str, Any] | None
    log: bytes  # the whole framed log of this invocation (START..REPORT)
    report: Report
    executed_version: str

    def log_tail(self, limit: int = 4096) -> bytes:
        return self.log[-limit:]


_UUID4_KEEP = ~(0xC000 << 48) & ~(0xF000 << 64)  # clears the variant and version fields
_UUID4_SET = (0x8000 << 48) | (4 << 76)  # variant RFC 4122, version 4
_ids = random.Random()  # seeded from os.urandom; reseeded in a forked child (see below)
os.register_at_fork(after_in_child=_ids.seed)


def new_request_id() -> str:
    """A random (version 4) UUID string for an invocation. Drawn from a seeded generator
    instead of uuid4(): uuid4 reads os.urandom on every call, a system call on the invoke
    path that, like every blocking call, hands the GIL to another thread under load. Request
    ids must be unique, not unpredictable; 122 random bits from a generator seeded with OS
    entropy are, and a forked child reseeds so it never repeats its parent's sequence."""
    # The bits uuid.UUID(int=..., version=4) sets (version 4, RFC 4122 variant), formatted
    # directly: the same string in half the time (tests compare it with uuid.UUID).
    h = "%032x" % (_ids.getrandbits(128) & _UUID4_KEEP | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_json_scan = json.scanner.make_scanner(json.JSONDecoder())
_json_ws = re.compile(r"[ \t\n\r]*").match
_WS = frozenset(" \t\n\r")


def _is_json_document(body: bytes) -> bool:
    """True if `body` is one UTF-8 JSON document (whitespace around it allowed). The common
    case of check_payload in a third of json.loads' time (no encoding detection, no decoder
    object layers); anything else, UTF-16 JSON included, goes the json.loads way."""
    try:
        s = body.decode()
        # The whitespace regex only where there is whitespace (a document rarely has any
        # around it): two matches were a tenth of this check (decision 085).
        _obj, end = _json_scan(s, _json_ws(s, 0).end() if s[:1] in _WS else 0)
        return end == len(s) or _json_ws(s, end).end() == len(s)
    except (ValueError, StopIteration, RecursionError):
        return False


def check_payload(payload: bytes | str | None, limit: int = MAX_PAYLOAD_BYTES,
                  kind: str = "synchronous") -> bytes:
    """An event as the runner passes it on: JSON bytes of at most `limit` (empty means null).
    Raises RequestTooLarge or InvalidRequestContent naming the limit or the parse error."""
    if payload is None:
        return b"null"
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(body) > limit:
        raise RequestTooLarge(
            f"payload: {len(body)} bytes exceeds the {limit}-byte limit for {kind} "
            "invocation; send a smaller event or a reference to the data"
        )
    if _is_json_document(body):
        return body
    if not body.strip():
        return b"null"
    try:
        json.loads(body)  # also the error message: the same as Lambda's parser's wording
    except RecursionError:
        raise InvalidRequestContent(
            "payload", "could not parse request body into json: nested too deeply; send a "
            "flatter JSON document") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContent(
            "payload", f"could not parse request body into json: {exc}; send a JSON document"
        ) from None
    return body
