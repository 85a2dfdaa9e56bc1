"""Trace context: what a caller's `X-Amzn-Trace-Id` or W3C `traceparent` becomes for the guest.

The guest sees one value, Lambda's: `_X_AMZN_TRACE_ID` = `Root=1-<8 hex>-<24 hex>;Parent=<16
hex>;Sampled=<0|1>`. A W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent>-<2 hex flags>`)
maps onto it one-to-one (the X-Ray trace id is the W3C one split after 8 digits), so a trace
started by an OpenTelemetry client continues through the function and back out of it.
`X-Amzn-Trace-Id` wins when both come (it is what Lambda reads).

Without either, the invocation has no trace of its own and the guest sees `Root=<request id>`
as before (decision 063): generating one per invocation would cost every invocation for
callers that trace nothing.

An accepted trace goes with the invocation: to the guest (the invoke frame's `trace`), to the
REPORT line (Lambda's `XRAY TraceId: ... SegmentId: ... Sampled: ...` suffix), and with an
asynchronous event into the queue, so its later attempts run under the same trace. A message
read by an event source mapping may carry one too (`from_message`): its batch runs under it.
"""

from __future__ import annotations

import re

MAX_TRACE_LEN = 256  # the guest's in-place buffer (decision 038); longer values are refused
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_AMZN_OK = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces, no NUL


def from_headers(amzn: str | None, traceparent: str | None) -> str | None:
    """The trace an invocation runs under, or None: a well-formed `X-Amzn-Trace-Id` as given,
    else a valid `traceparent` in X-Ray form. Malformed values are ignored, as a tracing
    header must never fail a request."""
    if amzn:
        amzn = amzn.strip()
        if len(amzn) <= MAX_TRACE_LEN and _AMZN_OK.match(amzn) and "Root=" in amzn:
            return amzn
    if traceparent:
        m = _TRACEPARENT.match(traceparent.strip().lower())
        if m and m.group(1) != "ff" and set(m.group(2)) != {"0"} and set(m.group(3)) != {"0"}:
            tid = m.group(2)
            sampled = int(m.group(4), 16) & 1
            return f"Root=1-{tid[:8]}-{tid[8:]};Parent={m.group(3)};Sampled={sampled}"
    return None


def from_message(headers: dict[str, str] | None) -> str:
    """The trace a broker message carries in its headers (NATS headers, Redis stream fields),
    matched case-insensitively as HTTP headers are; "" when none or malformed."""
    if not headers:
        return ""
    lower = {str(k).lower(): v for k, v in headers.items()}
    amzn, parent = lower.get("x-amzn-trace-id"), lower.get("traceparent")
    return from_headers(amzn if isinstance(amzn, str) else None,
                        parent if isinstance(parent, str) else None) or ""


def fields(trace: str) -> dict[str, str]:
    """`Root=...;Parent=...;Sampled=1` -> {"Root": ..., "Parent": ..., "Sampled": "1"}."""
    out = {}
    for part in trace.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def report_suffix(trace: str) -> str:
    """Lambda's addition to the REPORT line of a traced invocation."""
    f = fields(trace)
    s = f"XRAY TraceId: {f.get('Root', '')}"
    if f.get("Parent"):
        s += f"\tSegmentId: {f['Parent']}"
    s += f"\tSampled: {'true' if f.get('Sampled') == '1' else 'false'}"
    return s


def traceparent(trace: str) -> str | None:
    """The W3C form of an X-Ray trace (for a response header or an exporter), or None when
    its Root is not an X-Ray trace id."""
    f = fields(trace)
    m = re.match(r"^1-([0-9a-f]{8})-([0-9a-f]{24})$", f.get("Root", ""))
    if not m:
        return None
    parent = f.get("Parent", "")
    if not re.match(r"^[0-9a-f]{16}$", parent):
        parent = "0" * 15 + "1"
    return f"00-{m.group(1)}{m.group(2)}-{parent}-{'01' if f.get('Sampled') == '1' else '00'}"
