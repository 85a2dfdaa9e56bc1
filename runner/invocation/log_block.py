"""An invocation's log block and its writing: the invocation layer's record of one invocation.

A block is what Lambda writes to the function's log for one invocation, in one piece::

    <init output, on a cold start>
    START RequestId: <id> Version: <version>
    <the function's output>
    <the error line, if it failed>
    END RequestId: <id>
    REPORT RequestId: <id>  Duration: ...

`Runner` makes one `LogBlock` per invocation, and the block is written one of two ways, both
going down to the log store (storage/logs.py), never back up to the Runner:

* `LogBlock.write()` before `Runner.invoke` returns; the result carries the text;
* `LogBlock.promise()` for `Runner.invoke_log_later`: the store records the promise
  (`LogStore.reserve`) and the caller gets a `PendingLog` to run once, when it chooses. The
  gRPC edge runs it after the response is sent (docs/decisions/037). Until it runs, reads of
  the function's log wait for the block, so a caller that reads the log after its response
  always finds the invocation in it.

The text is formatted when the block is written, so a deferred block also defers the
formatting (microseconds that were on every invocation's latency).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from runner.errors import FunctionError, FunctionTimeout
from runner.invocation.json_logs import json_text
from runner.invocation_record import Report
from runner.storage.logs import LogStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LogBlock:
    """One invocation's record: what its log block says, and the store it goes to."""

    store: LogStore
    function: str  # the function's name: one log per function
    version: str  # the version that ran ("$LATEST", "3")
    request_id: str
    error: FunctionError | None
    init_logs: bytes  # the init phase's output (cold starts only; b"" otherwise)
    logs: bytes  # the invocation's output
    report: Report
    owner: str = ""  # the function's identity (FunctionVersion.function_uid)
    # Lambda's LoggingConfig: "" = Text; else the JSON format at this SystemLogLevel.
    json_system_level: str = ""
    trace_id: str = ""

    def text(self) -> str:
        """The block as Lambda formats it, ending in a newline."""
        if self.json_system_level:
            return json_text(self)
        rid = self.request_id
        lines = []
        if self.init_logs:
            lines.append(self.init_logs.decode("utf-8", "replace").rstrip("\n"))
        lines.append(f"START RequestId: {rid} Version: {self.version}")
        if self.logs:
            lines.append(self.logs.decode("utf-8", "replace").rstrip("\n"))
        error = self.error
        if error is not None:
            # Lambda's timeout line is the platform's, stamped; other errors are the runtime's.
            if error.error_type == FunctionTimeout.error_type:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                lines.append(f"{stamp}Z {rid} {error.message}")
            else:
                lines.append(f"[ERROR] {error.error_type}: {error.message}")
        lines.append(f"END RequestId: {rid}")
        lines.append(self.report.line())
        return "\n".join(lines) + "\n"

    def write(self) -> str:
        """Append the block to the function's log now; returns its text."""
        return self._append(reserved=False)

    def promise(self) -> PendingLog:
        """Promise the block to the store (reads wait for it) and hand back its writing."""
        self.store.reserve(self.function)
        return PendingLog(self)

    def _append(self, reserved: bool) -> str:
        text = self.text()
        try:
            self.store.append(self.function, text, reserved=reserved, owner=self.owner)
        except OSError as exc:
            # The handler has run: its result must still reach the caller (a retry would run
            # it twice). The block is lost, not cut in half (LogStore); the operator is told.
            log.error("log block of %s (request %s) not written: %s",
                      self.function, self.request_id, exc)
        return text


class PendingLog:
    """A promised log block, written by `write()`. Runs once: the store counts one promise per
    block, so a second call (a retry after an error, say) must not keep it twice."""

    __slots__ = ("_block",)

    def __init__(self, block: LogBlock) -> None:
        self._block: LogBlock | None = block

    def write(self) -> None:
        block, self._block = self._block, None
        if block is not None:
            block._append(reserved=True)


def interrupted_note(request_id: str, version: str, started_at: float) -> str:
    """The block for an asynchronous attempt a crash cut short (async_dispatcher.py): the
    server stopped before the attempt's outcome was recorded, so the event runs again with the
    same request id; this names the first attempt in the log beside the second's own block.
    What the attempt printed lived in the dead server's memory and is not recoverable."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started_at))
    return (f"START RequestId: {request_id} Version: {version}\n"
            f"[runner] the server stopped before the outcome of this attempt (started "
            f"{stamp}Z) was recorded; it may have run in part, its output is lost, and the "
            f"event runs again (at-least-once delivery)\n"
            f"END RequestId: {request_id}\n")
