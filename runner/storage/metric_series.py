"""The time series behind the dashboard's charts: one row per function per minute.

Prometheus counters say "how many since the server started"; a dashboard needs "how many in
each minute of the last day", surviving restarts. The metrics layer (runner/metrics/minutes.py)
adds up each minute in memory and hands the rows here every few seconds; `add()` merges them
into what the minute already holds (counts add, maxima take the larger), so a minute flushed
in two parts, or by two server lives, is still whole.

Rows are kept `RETENTION_S` (7 days) in `metrics.db`; the dashboard shows the last hour or
day of them, usage (`runner usage`) sums them per day. A separate file from registry.db and
events.db: a flush every few seconds must never queue behind a deploy or an event enqueue.

Durations are kept as counts per bucket (`DURATION_BOUNDS_MS`), not as samples: buckets of
different minutes add up, so p50/p99 over any window come from one sum (`quantile_ms`), to
within a bucket's width, exactly as Prometheus' histogram_quantile() computes them.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from runner.storage.sqlite import Transaction, open_database

RETENTION_S = 7 * 24 * 3600
# Upper bounds (ms) of the duration buckets, 1 ms to Lambda's 15 min; the last bucket is +Inf.
DURATION_BOUNDS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                      60000, 120000, 300000, 600000, 900000)
N_BUCKETS = len(DURATION_BOUNDS_MS) + 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS minutes (
    function       TEXT NOT NULL,
    minute         INTEGER NOT NULL,   -- unix seconds of the minute's start (a multiple of 60)
    invocations    INTEGER NOT NULL,   -- every invocation that ran (successes and errors)
    errors         INTEGER NOT NULL,   -- function errors, timeouts, out of memory
    throttles      INTEGER NOT NULL,   -- refused: TooManyRequests
    cold_starts    INTEGER NOT NULL,
    duration_ms    REAL NOT NULL,      -- the sum, for the mean
    buckets        TEXT NOT NULL,      -- JSON: counts per DURATION_BOUNDS_MS bucket
    concurrency    INTEGER NOT NULL,   -- the most invocations in flight at once
    gb_seconds     REAL NOT NULL,      -- billed duration x memory (on demand)
    provisioned_gb_seconds REAL NOT NULL,  -- provisioned environments x memory x time
    PRIMARY KEY (function, minute)
);
CREATE INDEX IF NOT EXISTS minutes_by_time ON minutes (minute);
"""


def bucket_index(duration_ms: float) -> int:
    """The bucket a duration falls in (its upper bound is the first bound >= it)."""
    return bisect.bisect_left(DURATION_BOUNDS_MS, duration_ms)


def quantile_ms(buckets: list[int], q: float) -> float | None:
    """The q-quantile of the durations counted in `buckets`, interpolated linearly inside its
    bucket (Prometheus' histogram_quantile); None when nothing was counted. A quantile in
    the +Inf bucket reports the last finite bound."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i >= len(DURATION_BOUNDS_MS):
                return float(DURATION_BOUNDS_MS[-1])
            lo = DURATION_BOUNDS_MS[i - 1] if i else 0.0
            hi = DURATION_BOUNDS_MS[i]
            return lo + (hi - lo) * (rank - seen) / n
        seen += n
    return float(DURATION_BOUNDS_MS[-1])


@dataclass
class MinuteSample:
    """What one function did in one minute (or, from totals(), over a window)."""

    function: str
    minute: int
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    duration_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)
    concurrency: int = 0
    gb_seconds: float = 0.0
    provisioned_gb_seconds: float = 0.0

    def merge(self, other: "MinuteSample") -> None:
        self.invocations += other.invocations
        self.errors += other.errors
        self.throttles += other.throttles
        self.cold_starts += other.cold_starts
        self.duration_ms += other.duration_ms
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets)]
        self.concurrency = max(self.concurrency, other.concurrency)
        self.gb_seconds += other.gb_seconds
        self.provisioned_gb_seconds += other.provisioned_gb_seconds

    def quantile_ms(self, q: float) -> float | None:
        return quantile_ms(self.buckets, q)

    def to_dict(self) -> dict:
        return {"function": self.function, "minute": self.minute,
                "invocations": self.invocations, "errors": self.errors,
                "throttles": self.throttles, "cold_starts": self.cold_starts,
                "duration_ms": round(self.duration_ms, 3),
                "p50_ms": _round(self.quantile_ms(0.5)), "p99_ms": _round(self.quantile_ms(0.99)),
                "concurrency": self.concurrency, "gb_seconds": round(self.gb_seconds, 6),
                "provisioned_gb_seconds": round(self.provisioned_gb_seconds, 6)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


class MetricSeriesStore(Protocol):
    """Per-minute samples per function; the contract is tests/unit/storage/test_metric_series.py."""

    def add(self, samples: Iterable[MinuteSample]) -> None:
        """Merge each sample into the stored row of its (function, minute): counts and sums
        add, `concurrency` keeps the larger. Atomic: all of them or none."""

    def series(self, function: str, since: int, until: int) -> list[MinuteSample]:
        """The stored minutes of `function` with since <= minute < until, oldest first;
        minutes with nothing recorded are absent (the caller fills gaps)."""

    def window(self, since: int, until: int) -> list[MinuteSample]:
        """Every function's stored minutes with since <= minute < until, in no set order."""

    def totals(self, since: int, until: int) -> dict[str, MinuteSample]:
        """Every function's minutes in [since, until) merged into one sample per function
        (its `minute` is `since`)."""

    def daily(self, since: int, until: int) -> list[MinuteSample]:
        """Per function per UTC day in [since, until): one merged sample each, its `minute`
        the day's start; ordered by day, then function."""

    def prune(self, before: int) -> int:
        """Drop minutes older than `before`; returns how many rows went."""

    def delete_function(self, function: str) -> None:
        """Forget a deleted function's history (a later function of the same name starts
        with none)."""

    def close(self) -> None:
        """Release the database."""


class Rollups:
    """totals() and daily() of the protocol, from the store's own window(): one copy for
    every implementation (SQLite here, PostgreSQL in postgres/metric_series.py)."""

    def totals(self, since: int, until: int) -> dict[str, MinuteSample]:
        out: dict[str, MinuteSample] = {}
        for s in self.window(since, until):
            out.setdefault(s.function, MinuteSample(s.function, since)).merge(s)
        return out

    def daily(self, since: int, until: int) -> list[MinuteSample]:
        out: dict[tuple[int, str], MinuteSample] = {}
        for s in self.window(since, until):
            day = s.minute - s.minute % 86400
            out.setdefault((day, s.function), MinuteSample(s.function, day)).merge(s)
        return [out[k] for k in sorted(out)]


class SQLiteMetricSeries(Rollups):
    """MetricSeriesStore in `<data dir>/metrics.db`."""

    def __init__(self, data_dir: str) -> None:
        self._db = open_database(os.path.join(data_dir, "metrics.db"), SCHEMA)
        self._lock = threading.Lock()

    def add(self, samples: Iterable[MinuteSample]) -> None:
        samples = list(samples)
        if not samples:
            return
        with self._lock, Transaction(self._db) as db:
            for s in samples:
                row = db.execute("SELECT * FROM minutes WHERE function = ? AND minute = ?",
                                 (s.function, s.minute)).fetchone()
                merged = MinuteSample(s.function, s.minute)
                if row is not None:
                    merged = _sample(row)
                merged.merge(s)
                db.execute(
                    "INSERT OR REPLACE INTO minutes VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (merged.function, merged.minute, merged.invocations, merged.errors,
                     merged.throttles, merged.cold_starts, merged.duration_ms,
                     json.dumps(merged.buckets), merged.concurrency, merged.gb_seconds,
                     merged.provisioned_gb_seconds))

    def series(self, function: str, since: int, until: int) -> list[MinuteSample]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM minutes WHERE function = ? AND minute >= ? AND minute < ? "
                "ORDER BY minute", (function, since, until)).fetchall()
        return [_sample(r) for r in rows]

    def window(self, since: int, until: int) -> list[MinuteSample]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM minutes WHERE minute >= ? AND minute < ?",
                                    (since, until)).fetchall()
        return [_sample(r) for r in rows]

    def prune(self, before: int) -> int:
        with self._lock, Transaction(self._db) as db:
            return db.execute("DELETE FROM minutes WHERE minute < ?", (before,)).rowcount

    def delete_function(self, function: str) -> None:
        with self._lock, Transaction(self._db) as db:
            db.execute("DELETE FROM minutes WHERE function = ?", (function,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _sample(row) -> MinuteSample:
    buckets = json.loads(row["buckets"])
    buckets += [0] * (N_BUCKETS - len(buckets))  # rows written with fewer buckets stay readable
    return MinuteSample(row["function"], row["minute"], row["invocations"], row["errors"],
                        row["throttles"], row["cold_starts"], row["duration_ms"],
                        buckets[:N_BUCKETS], row["concurrency"], row["gb_seconds"],
                        row["provisioned_gb_seconds"])
