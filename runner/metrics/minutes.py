"""Minute buckets for the dashboard: added up in memory per (function, minute), written to the
series store (storage/metric_series.py) every FLUSH_S by one background thread.

Why in memory first: the invocation path must not write SQLite (a warm invoke is ~0.5 ms; a
committed write is more). A kill -9 loses at most the last FLUSH_S of chart history, never a
Prometheus counter's meaning (those start again from zero with the process, as Prometheus
expects of a restart).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from runner.storage.metric_series import RETENTION_S, MetricSeriesStore, MinuteSample, bucket_index

log = logging.getLogger(__name__)

FLUSH_S = 5.0
PRUNE_EVERY_S = 3600.0


class MinuteBuckets:
    """The current minutes not yet written. Thread-safe; each call is a dict lookup and a few
    additions under one lock."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 lock: threading.Lock | None = None) -> None:
        self._clock = clock
        # Shared with Metrics' invocation counts, so a finished invocation takes one lock.
        self._lock = lock if lock is not None else threading.Lock()
        self._open: dict[tuple[str, int], MinuteSample] = {}
        self.settle: Callable[[], None] = lambda: None  # counts what the owner queued

    def _get(self, function: str, at: float | None = None) -> MinuteSample:
        now = int(self._clock() if at is None else at)
        minute = now - now % 60
        key = (function, minute)
        s = self._open.get(key)
        if s is None:
            s = self._open[key] = MinuteSample(function, minute)
        return s

    def invocation(self, function: str, duration_ms: float, error: bool, cold: bool,
                   gb_seconds: float, concurrency: int) -> None:
        with self._lock:
            self.invocation_locked(function, duration_ms, error, cold, gb_seconds, concurrency)

    def invocation_locked(self, function: str, duration_ms: float, error: bool, cold: bool,
                          gb_seconds: float, concurrency: int, at: float | None = None) -> None:
        """invocation() for a caller that holds the lock; `at` is when it finished."""
        s = self._get(function, at)
        s.invocations += 1
        s.errors += error
        s.cold_starts += cold
        s.duration_ms += duration_ms
        s.buckets[bucket_index(duration_ms)] += 1
        s.gb_seconds += gb_seconds
        if concurrency > s.concurrency:
            s.concurrency = concurrency

    def throttle(self, function: str) -> None:
        with self._lock:
            self.throttle_locked(function)

    def throttle_locked(self, function: str) -> None:
        self._get(function).throttles += 1

    def provisioned(self, function: str, gb_seconds: float) -> None:
        with self._lock:
            self._get(function).provisioned_gb_seconds += gb_seconds

    def peek(self) -> list[MinuteSample]:
        """Copies of the minutes not yet written (the dashboard adds them to the stored ones)."""
        self.settle()
        with self._lock:
            out = []
            for s in self._open.values():
                c = MinuteSample(s.function, s.minute)
                c.merge(s)
                out.append(c)
        return out

    def drain(self) -> list[MinuteSample]:
        self.settle()
        with self._lock:
            out = list(self._open.values())
            self._open = {}
        return out


class SeriesWriter:
    """The thread that moves MinuteBuckets into the store every FLUSH_S, charges provisioned
    environments their GB-seconds (`tick`, called with the seconds since the last one), and
    prunes rows past the retention once an hour. `close()` writes what is left."""

    def __init__(self, buckets: MinuteBuckets, store: MetricSeriesStore,
                 tick: Callable[[float], None] | None = None, flush_s: float = FLUSH_S) -> None:
        self.buckets = buckets
        self.store = store
        self._tick = tick
        self._flush_s = flush_s
        self._stop = threading.Event()
        self._last_tick = time.monotonic()
        self._last_prune = 0.0
        self._thread = threading.Thread(target=self._loop, name="metrics-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        """Charge provisioned time up to now and write every open minute."""
        if self._tick is not None:
            now = time.monotonic()
            self._tick(now - self._last_tick)
            self._last_tick = now
        self.store.add(self.buckets.drain())
        if time.time() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.time()
            self.store.prune(int(time.time()) - RETENTION_S)

    def _loop(self) -> None:
        while not self._stop.wait(self._flush_s):
            try:
                self.flush()
            except Exception:  # a full disk loses chart history, never the server
                log.exception("metrics: could not write the minute series")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.flush()
        except Exception:
            log.exception("metrics: could not write the last minutes")
