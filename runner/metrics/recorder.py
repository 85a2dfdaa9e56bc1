"""`Metrics`: what the other layers call to count what they do. One per Runner.

The invocation layer calls `started(function)` once the function is resolved, then exactly
one of `finished(...)` (it ran: success or a function error) or `refused(function,
throttled)` (a platform error after start: throttled, a host failure). Unknown names never
get here, so the `function` label only ever holds deployed functions.

Cost on the warm path: two calls, each a dict lookup of cached label children, a few
lock-protected additions and one bisect (bench/metrics_bench.py measures it against
`NullMetrics`, which every Runner built with `metrics=False` uses).
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runner.metrics.families import Families
from runner.metrics.minutes import MinuteBuckets

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "NullMetrics", "outcome_of"]

_MB_PER_GB = 1024.0


def outcome_of(error: Any) -> str:
    """The `outcome` label of an invocation that ran: its error's Lambda type decides."""
    if error is None:
        return "success"
    kind = getattr(error, "error_type", "")
    if kind == "Sandbox.Timedout":
        return "timeout"
    if kind == "Runtime.OutOfMemory":
        return "out_of_memory"
    return "function_error"


class _Children:
    """The label children of one function, looked up once (labels() costs a few µs)."""

    __slots__ = ("duration", "init", "cold", "errors", "gb", "concurrent", "outcomes")

    def __init__(self, f: Families, function: str) -> None:
        self.duration = f.duration.labels(function)
        self.init = f.init_duration.labels(function)
        self.cold = f.cold_starts.labels(function)
        self.errors = f.errors.labels(function)
        self.gb = f.gb_seconds.labels(function)
        self.concurrent = f.concurrent.labels(function)
        self.outcomes: dict[tuple[str, str], Any] = {}


class Metrics:
    enabled = True

    def __init__(self) -> None:
        self.families = Families()
        self.registry = self.families.registry
        self.minutes = MinuteBuckets()
        self._lock = threading.Lock()
        self._children: dict[str, _Children] = {}
        self._inflight: dict[str, int] = {}

    def _of(self, function: str) -> _Children:
        c = self._children.get(function)
        if c is None:
            with self._lock:
                c = self._children.get(function)
                if c is None:
                    c = self._children[function] = _Children(self.families, function)
        return c

    # ------------------------------------------------------------------ invocations

    def started(self, function: str) -> None:
        with self._lock:
            self._inflight[function] = self._inflight.get(function, 0) + 1
        self._of(function).concurrent.inc()

    def _ended(self, function: str) -> int:
        """One fewer in flight; returns how many were in flight with this one."""
        with self._lock:
            n = self._inflight.get(function, 1)
            if n <= 1:
                self._inflight.pop(function, None)
            else:
                self._inflight[function] = n - 1
        self._of(function).concurrent.dec()
        return n

    def finished(self, function: str, version: str, report, error, memory_mb: int) -> None:
        """An invocation that ran (or whose init failed): counted once, with its report."""
        concurrency = self._ended(function)
        c = self._of(function)
        outcome = outcome_of(error)
        child = c.outcomes.get((version, outcome))
        if child is None:
            child = c.outcomes[(version, outcome)] = self.families.invocations.labels(
                function, version, outcome)
        child.inc()
        if error is not None:
            c.errors.inc()
        c.duration.observe(report.duration_ms / 1000.0)
        if report.cold_start:
            c.cold.inc()
            if report.init_duration_ms is not None:
                c.init.observe(report.init_duration_ms / 1000.0)
        gb_s = report.billed_duration_ms / 1000.0 * memory_mb / _MB_PER_GB
        if gb_s:
            c.gb.inc(gb_s)
        self.minutes.invocation(function, report.duration_ms, error is not None,
                                report.cold_start, gb_s, concurrency)

    def refused(self, function: str, throttled: bool) -> None:
        """A started invocation that did not run: throttled (counted), or a platform error."""
        self._ended(function)
        if throttled:
            self.throttled(function)

    def throttled(self, function: str, version: str = "") -> None:
        """Refused for concurrency, by the pool or by an edge's admission ceiling."""
        self.families.throttles.labels(function).inc()
        self.families.invocations.labels(function, version, "throttled").inc()
        self.minutes.throttle(function)

    # ------------------------------------------------------------------ async invocation

    def event_received(self, function: str) -> None:
        self.families.async_received.labels(function).inc()

    def event_age(self, function: str, age_s: float) -> None:
        self.families.async_age.labels(function).observe(max(0.0, age_s))

    def event_dropped(self, function: str, reason: str) -> None:
        """reason: expired (past the maximum age), retries (none left), deleted (function)."""
        self.families.async_dropped.labels(function, reason).inc()

    def event_retry(self, function: str) -> None:
        self.families.async_retries.labels(function).inc()

    def dead_letter(self, function: str, ok: bool = True) -> None:
        (self.families.dead_letters if ok else self.families.dead_letter_errors).labels(function).inc()

    def destination_failure(self, function: str) -> None:
        self.families.destination_failures.labels(function).inc()

    # ------------------------------------------------------------------ sources, workflows

    def source_batch(self, mapping: str, function: str, records: int, ok: bool,
                     iterator_age_s: float | None = None) -> None:
        """One batch of an event source mapping handed to its function."""
        f = self.families
        f.source_batches.labels(mapping, function, "success" if ok else "error").inc()
        f.source_records.labels(mapping, function).inc(records)
        if iterator_age_s is not None:
            f.iterator_age.labels(mapping).set(iterator_age_s)

    def workflow_execution(self, workflow: str, status: str) -> None:
        """status: started, succeeded, failed, timed_out, aborted."""
        self.families.workflow_executions.labels(workflow, status).inc()

    # ------------------------------------------------------------------ the edges, usage

    def rpc(self, method: str, code: str, seconds: float) -> None:
        self.families.rpc_requests.labels(method, code).inc()
        self.families.rpc_latency.labels(method).observe(seconds)

    def http(self, kind: str, status: int, seconds: float) -> None:
        self.families.http_requests.labels(kind, str(status)).inc()
        self.families.http_latency.labels(kind).observe(seconds)

    def provisioned(self, function: str, gb_seconds: float) -> None:
        if gb_seconds > 0:
            self.families.provisioned_gb_seconds.labels(function).inc(gb_seconds)
            self.minutes.provisioned(function, gb_seconds)

    def forget(self, function: str) -> None:
        """A deleted function's series go (a later one of that name starts from zero)."""
        with self._lock:
            self._children.pop(function, None)
        for fam in (self.families.duration, self.families.init_duration, self.families.cold_starts,
                    self.families.errors, self.families.gb_seconds, self.families.concurrent,
                    self.families.throttles, self.families.provisioned_gb_seconds,
                    self.families.async_received, self.families.async_age,
                    self.families.async_retries, self.families.dead_letters,
                    self.families.dead_letter_errors, self.families.destination_failures):
            try:
                fam.remove(function)
            except KeyError:
                pass
        for fam in (self.families.invocations, self.families.async_dropped):
            for labels in [k for k in list(fam._metrics) if k[0] == function]:
                fam.remove(*labels)

    def exposition(self) -> bytes:
        """The Prometheus text format of every family (what GET /metrics answers)."""
        return generate_latest(self.registry)


class NullMetrics(Metrics):
    """Counts nothing (Runner(metrics=False)): the baseline of bench/metrics_bench.py."""

    enabled = False

    def __init__(self) -> None:
        super().__init__()

    def started(self, function: str) -> None:
        pass

    def finished(self, function: str, version: str, report, error, memory_mb: int) -> None:
        pass

    def refused(self, function: str, throttled: bool) -> None:
        pass

    def throttled(self, function: str, version: str = "") -> None:
        pass
