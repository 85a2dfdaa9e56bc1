"""The log block in Lambda's JSON format (LogFormat JSON, docs/observability.md).

Lambda then writes its platform lines as JSON records instead of START/END/REPORT text:

    {"time": "...Z", "type": "platform.start", "record": {"requestId": ..., "version": ...}}
    {"time": "...Z", "type": "platform.runtimeDone", "record": {"requestId": ..., "status": ...}}
    {"time": "...Z", "type": "platform.report", "record": {"requestId": ..., "status": ...,
        "metrics": {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB",
                    "initDurationMs" (cold starts)}}}

filtered by SystemLogLevel: DEBUG all three, INFO start and report, WARN none of them. The
function's own records are the runtime's (the bootstraps write JSON and apply
ApplicationLogLevel); a function error is one ERROR record with Lambda's errorType,
errorMessage and stackTrace, written here as the runtime would.
"""

from __future__ import annotations

import json
import time

from runner.errors import FunctionTimeout

_SYSTEM_RANK = {"DEBUG": 0, "INFO": 1, "WARN": 2}
_TYPE_RANK = {"platform.start": 1, "platform.runtimeDone": 0, "platform.report": 1}


def _stamp() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def status_of(error) -> str:
    if error is None:
        return "success"
    return "timeout" if error.error_type == FunctionTimeout.error_type else "error"


def json_text(block) -> str:
    """`block` (a LogBlock) as JSON lines, ending in a newline."""
    level = _SYSTEM_RANK.get(block.json_system_level, 1)
    now = _stamp()
    rid = block.request_id
    status = status_of(block.error)
    lines = []

    def platform(kind: str, record: dict) -> None:
        if _TYPE_RANK[kind] >= level:
            lines.append(json.dumps({"time": now, "type": kind, "record": record}))

    if block.init_logs:
        lines.append(block.init_logs.decode("utf-8", "replace").rstrip("\n"))
    start = {"requestId": rid, "version": block.version}
    if block.trace_id:
        start["tracing"] = {"type": "X-Amzn-Trace-Id", "value": block.trace_id}
    platform("platform.start", start)
    if block.logs:
        lines.append(block.logs.decode("utf-8", "replace").rstrip("\n"))
    error = block.error
    if error is not None:
        lines.append(json.dumps({
            "timestamp": now, "level": "ERROR", "requestId": rid,
            "message": f"{error.error_type}: {error.message}",
            "errorType": error.error_type, "errorMessage": error.message,
            "stackTrace": error.stack_trace}))
    platform("platform.runtimeDone", {"requestId": rid, "status": status})
    r = block.report
    metrics = {"durationMs": round(r.duration_ms, 2), "billedDurationMs": r.billed_duration_ms,
               "memorySizeMB": r.memory_size_mb, "maxMemoryUsedMB": r.max_memory_used_mb}
    if r.init_duration_ms is not None:
        metrics["initDurationMs"] = round(r.init_duration_ms, 2)
    report = {"requestId": rid, "metrics": metrics, "status": status}
    if error is not None:
        report["errorType"] = error.error_type
    if block.trace_id:
        report["tracing"] = {"type": "X-Amzn-Trace-Id", "value": block.trace_id}
    platform("platform.report", report)
    return "\n".join(lines) + "\n" if lines else ""
