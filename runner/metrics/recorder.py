"""`Metrics`: what the other layers call to count what they do. One per Runner.

The invocation layer calls `started(function)` once the function is resolved, then exactly
one of `finished(...)` (it ran: success or a function error) or `refused(function,
throttled)` (a platform error after start: throttled, a host failure). Unknown names never
get here, so the `function` label only ever holds deployed functions.

Cost on the warm path: two deque appends; the counting happens later, on a scrape, a chart
or the series writer's flush (bench/metrics_bench.py measures it against `NullMetrics`,
which every Runner built with `metrics=False` uses).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from runner.metrics.families import DURATION_BUCKETS_S, EDGE_BUCKETS_S, INIT_BUCKETS_S, Families
from runner.metrics.minutes import MinuteBuckets

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "NullMetrics", "outcome_of"]

_MB_PER_GB = 1024.0
_DURATION_BOUNDS_MS = tuple(b * 1000 for b in DURATION_BUCKETS_S)
_INIT_BOUNDS_MS = tuple(b * 1000 for b in INIT_BUCKETS_S)
DROP_REASONS = ("expired", "retries", "deleted")
SETTLE_AT = 100_000  # queued events counted inline past this (no scrape, no writer)


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


class _Stats:
    """One function's invocation counts since the server started (or since it was created)."""

    __slots__ = ("inflight", "outcomes", "errors", "throttles", "cold", "dur", "dur_sum",
                 "init", "init_sum", "gb")

    def __init__(self) -> None:
        self.inflight = 0
        self.outcomes: dict[tuple[str, str], int] = {}
        self.errors = 0
        self.throttles = 0
        self.cold = 0
        self.dur = [0] * (len(DURATION_BUCKETS_S) + 1)  # per bucket, not cumulative
        self.dur_sum = 0.0
        self.init = [0] * (len(INIT_BUCKETS_S) + 1)
        self.init_sum = 0.0
        self.gb = 0.0


class Metrics:
    enabled = True

    def __init__(self) -> None:
        self.families = Families()
        self.registry = self.families.registry
        # One lock for the invocation counts and the open minutes.
        self._lock = threading.Lock()
        self.minutes = MinuteBuckets(lock=self._lock)
        self.minutes.settle = self._settle  # a flush or a chart first counts what is queued
        self._stats: dict[str, _Stats] = {}
        # The invocation path only appends here (deque.append is atomic and ~0.1 µs); the
        # counting happens in _settle(), on a scrape, a chart, or the series writer's flush
        # every few seconds, off the invocation's latency (decision 062). Order is kept, so
        # in-flight counts and their per-minute maxima replay exactly.
        self._events: deque = deque()
        # The edges' calls, queued the same way: (family, label, code, seconds or None).
        # Counted into _edge_counts (family, label, code) -> n and _edge_latency (family,
        # label) -> per-bucket counts + [sum] when settled; rendered by _EdgeCollector.
        self._edge_events: deque = deque()
        self._edge_counts: dict[tuple[str, str, str], int] = {}
        self._edge_latency: dict[tuple[str, str], list] = {}
        self.registry.register(_InvocationCollector(self))
        self.registry.register(_EdgeCollector(self))

    # ------------------------------------------------------------------ invocations

    def started(self, function: str) -> None:
        self._events.append(function)

    def finished(self, function: str, version: str, report, error, memory_mb: int) -> None:
        """An invocation that ran (or whose init failed): counted once, with its report."""
        events = self._events
        events.append((function, version, report, error, memory_mb, time.time()))
        if len(events) > SETTLE_AT:  # nobody settled for a while: bound the queue
            self._settle()

    def refused(self, function: str, throttled: bool) -> None:
        """A started invocation that did not run: throttled (counted), or a platform error."""
        self._events.append((function, throttled))

    def throttled(self, function: str, version: str = "") -> None:
        """Refused for concurrency, by an edge's admission ceiling (the pool's come through
        refused())."""
        with self._lock:
            self._throttle_locked(function, version)

    def _settle(self) -> None:
        """Count every queued event, in order."""
        with self._lock:
            self._settle_locked()

    def _settle_locked(self) -> None:
        edge = self._edge_events
        if edge:
            self._settle_edge_locked(edge)
        events = self._events
        stats = self._stats
        minutes = self.minutes
        while events:
            e = events.popleft()
            if type(e) is str:  # started
                s = stats.get(e)
                if s is None:
                    s = stats[e] = _Stats()
                s.inflight += 1
                continue
            function = e[0]
            s = stats.get(function)
            if s is None:
                s = stats[function] = _Stats()
            concurrency = s.inflight
            s.inflight = concurrency - 1 if concurrency > 0 else 0
            if len(e) == 2:  # refused
                if e[1]:
                    self._throttle_locked(function, "")
                continue
            _, version, report, error, memory_mb, at = e
            key = (version, "success" if error is None else outcome_of(error))
            s.outcomes[key] = s.outcomes.get(key, 0) + 1
            d_ms = report.duration_ms
            s.dur[bisect_left(_DURATION_BOUNDS_MS, d_ms)] += 1
            s.dur_sum += d_ms
            gb_s = report.billed_duration_ms * memory_mb / (1000.0 * _MB_PER_GB)
            s.gb += gb_s
            if error is not None:
                s.errors += 1
            cold = report.cold_start
            if cold:
                s.cold += 1
                init_ms = report.init_duration_ms
                if init_ms is not None:
                    s.init[bisect_left(_INIT_BOUNDS_MS, init_ms)] += 1
                    s.init_sum += init_ms
            minutes.invocation_locked(function, d_ms, error is not None, cold, gb_s,
                                      concurrency, at)

    def _throttle_locked(self, function: str, version: str) -> None:
        s = self._stats.get(function)
        if s is None:
            s = self._stats[function] = _Stats()
        s.throttles += 1
        key = (version, "throttled")
        s.outcomes[key] = s.outcomes.get(key, 0) + 1
        self.minutes.throttle_locked(function)

    def snapshot(self) -> dict[str, _Stats]:
        """A copy of every function's counts (what a scrape renders)."""
        out = {}
        with self._lock:
            self._settle_locked()
            for fn, s in self._stats.items():
                c = _Stats()
                for name in _Stats.__slots__:
                    v = getattr(s, name)
                    setattr(c, name, v.copy() if isinstance(v, (list, dict)) else v)
                out[fn] = c
        return out

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

    def rpc(self, method: str, code: str, seconds: float | None) -> None:
        """One gRPC call: runner_rpc_requests_total{method, code} and, unless `seconds` is
        None (a stream: its life is not a latency), runner_rpc_duration_seconds{method}.
        Queued, as invocations are: prometheus-client's counter and histogram cost ~18k
        instructions per call (bench/instructions_bench.py, decision 085)."""
        events = self._edge_events
        events.append(("rpc", method, code, seconds))
        if len(events) > SETTLE_AT:
            self._settle()

    def http(self, kind: str, status: int, seconds: float) -> None:
        events = self._edge_events
        events.append(("http", kind, str(status), seconds))
        if len(events) > SETTLE_AT:
            self._settle()

    def _settle_edge_locked(self, events: deque) -> None:
        counts = self._edge_counts
        latency = self._edge_latency
        while events:
            family, label, code, seconds = events.popleft()
            key = (family, label, code)
            counts[key] = counts.get(key, 0) + 1
            if seconds is None:
                continue
            lat = latency.get((family, label))
            if lat is None:
                lat = latency[(family, label)] = [0] * (len(EDGE_BUCKETS_S) + 1) + [0.0]
            lat[bisect_left(EDGE_BUCKETS_S, seconds)] += 1
            lat[-1] += seconds

    def edge_snapshot(self) -> tuple[dict, dict]:
        """Copies of the edges' call counts and latency buckets (what a scrape renders)."""
        with self._lock:
            self._settle_locked()
            return dict(self._edge_counts), {k: v.copy() for k, v in self._edge_latency.items()}

    def provisioned(self, function: str, gb_seconds: float) -> None:
        if gb_seconds > 0:
            self.families.provisioned_gb_seconds.labels(function).inc(gb_seconds)
            self.minutes.provisioned(function, gb_seconds)

    def forget(self, function: str) -> None:
        """A deleted function's series go (a later one of that name starts from zero)."""
        with self._lock:
            self._settle_locked()
            self._stats.pop(function, None)
        f = self.families
        for fam in (f.provisioned_gb_seconds, f.async_received, f.async_age, f.async_retries,
                    f.dead_letters, f.dead_letter_errors, f.destination_failures):
            try:
                fam.remove(function)
            except KeyError:
                pass
        for reason in DROP_REASONS:
            try:
                f.async_dropped.remove(function, reason)
            except KeyError:
                pass

    def exposition(self) -> bytes:
        """The Prometheus text format of every family (what GET /metrics answers)."""
        return generate_latest(self.registry)


class _InvocationCollector(Collector):
    """Renders the invocation counts at scrape time (families.py says why they are not
    prometheus-client objects)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self):
        stats = self._metrics.snapshot()
        inv = CounterMetricFamily("lambda_invocations", "Invocations by outcome (CloudWatch "
                                  "Invocations; outcome throttled is Throttles)",
                                  labels=["function", "version", "outcome"])
        errors = CounterMetricFamily("lambda_errors", "Invocations that ended in a function "
                                     "error, timeout or out of memory (CloudWatch Errors)",
                                     labels=["function"])
        throttles = CounterMetricFamily("lambda_throttles", "Invocations refused for "
                                        "concurrency (CloudWatch Throttles)", labels=["function"])
        duration = HistogramMetricFamily("lambda_duration_seconds", "Handler run time "
                                         "(CloudWatch Duration)", labels=["function"])
        init = HistogramMetricFamily("lambda_init_duration_seconds", "Init phase of cold "
                                     "starts (Init Duration)", labels=["function"])
        cold = CounterMetricFamily("lambda_cold_starts", "Invocations that waited for an "
                                   "environment's init", labels=["function"])
        conc = GaugeMetricFamily("lambda_concurrent_executions", "Invocations in flight "
                                 "(CloudWatch ConcurrentExecutions)", labels=["function"])
        gb = CounterMetricFamily("lambda_billed_gb_seconds", "Billed duration x memory, "
                                 "GB-seconds (on demand)", labels=["function"])
        hits = CounterMetricFamily("runner_pool_hits", "Invocations that found an idle (warm) "
                                   "environment, all functions")
        misses = CounterMetricFamily("runner_pool_misses", "Invocations that waited for a cold "
                                     "start, all functions")
        warm = cold_total = 0
        for fn, s in sorted(stats.items()):
            ran = 0
            for (version, outcome), n in sorted(s.outcomes.items()):
                inv.add_metric([fn, version, outcome], n)
                if outcome != "throttled":
                    ran += n
            warm += ran - s.cold
            cold_total += s.cold
            errors.add_metric([fn], s.errors)
            throttles.add_metric([fn], s.throttles)
            duration.add_metric([fn], _cumulative(DURATION_BUCKETS_S, s.dur), s.dur_sum / 1000.0)
            init.add_metric([fn], _cumulative(INIT_BUCKETS_S, s.init), s.init_sum / 1000.0)
            cold.add_metric([fn], s.cold)
            conc.add_metric([fn], s.inflight)
            gb.add_metric([fn], s.gb)
        hits.add_metric([], warm)
        misses.add_metric([], cold_total)
        yield from (inv, errors, throttles, duration, init, cold, conc, gb, hits, misses)


class _EdgeCollector(Collector):
    """Renders the edges' call counts and latencies at scrape time (Metrics.rpc, .http)."""

    _FAMILIES = {
        "rpc": (("runner_rpc_requests", "gRPC calls by method and status", ["method", "code"]),
                ("runner_rpc_duration_seconds", "gRPC call latency", ["method"])),
        "http": (("runner_http_requests", "HTTP requests by kind and status", ["kind", "status"]),
                 ("runner_http_request_duration_seconds", "HTTP request latency", ["kind"])),
    }

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self):
        counts, latency = self._metrics.edge_snapshot()
        for family, (count_spec, latency_spec) in self._FAMILIES.items():
            requests = CounterMetricFamily(*count_spec[:2], labels=count_spec[2])
            for (fam, label, code), n in sorted(counts.items()):
                if fam == family:
                    requests.add_metric([label, code], n)
            seconds = HistogramMetricFamily(*latency_spec[:2], labels=latency_spec[2])
            for (fam, label), lat in sorted(latency.items()):
                if fam == family:
                    seconds.add_metric([label], _cumulative(EDGE_BUCKETS_S, lat[:-1]), lat[-1])
            yield requests
            yield seconds


def _cumulative(bounds, counts: list[int]) -> list[tuple[str, float]]:
    out, seen = [], 0
    for bound, n in zip((*[repr(float(b)) for b in bounds], "+Inf"), counts):
        seen += n
        out.append((bound, seen))
    return out


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
