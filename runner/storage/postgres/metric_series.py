"""The dashboard's minute series on PostgreSQL: the MetricSeriesStore contract
(storage/metric_series.py), shared by the nodes of a cluster.

Each node writes only its own rows (`node_id` is part of the key) and reads every node's:
a dashboard, `runner usage` or GetMetricData through any node shows the cluster's totals.
Why not one row per minute that every node adds into: each node's SeriesWriter flushes every
few seconds, so with N nodes every (function, minute) row would be a hot row updated by N
writers; rows of their own never wait for another node's lock, and a node's flush stays one
upsert per sample (counts add, maxima take the larger, as in SQLite).

Reading sums a minute's rows across nodes: counts, durations and buckets add. `concurrency`
adds too -- nodes run their invocations side by side, so a minute's cluster-wide peak is at
most the sum of the nodes' peaks (they need not coincide: an upper bound, and exact for a
single node); across minutes it still takes the larger (MinuteSample.merge).

Rows of nodes that left stay until pruned (RETENTION_S, 7 days, as on one node): a node's
history does not vanish from the cluster's charts when it stops. Any node's prune removes
every node's old rows; running it on several nodes is harmless (the same DELETE).
"""

from __future__ import annotations

from typing import Iterable

from runner.storage.metric_series import N_BUCKETS, MinuteSample, Rollups
from runner.storage.postgres.connection import POOLS, Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_minutes (
    node_id        TEXT NOT NULL,
    function       TEXT NOT NULL,
    minute         BIGINT NOT NULL,
    invocations    BIGINT NOT NULL,
    errors         BIGINT NOT NULL,
    throttles      BIGINT NOT NULL,
    cold_starts    BIGINT NOT NULL,
    duration_ms    DOUBLE PRECISION NOT NULL,
    buckets        BIGINT[] NOT NULL,
    concurrency    BIGINT NOT NULL,
    gb_seconds     DOUBLE PRECISION NOT NULL,
    provisioned_gb_seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function, minute, node_id)
);
CREATE INDEX IF NOT EXISTS metric_minutes_by_time ON metric_minutes (minute);
"""

# Element-wise sum of the stored and the added buckets (unnest pads the shorter with NULLs).
_ADD = """
INSERT INTO metric_minutes AS m VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (function, minute, node_id) DO UPDATE SET
    invocations = m.invocations + EXCLUDED.invocations,
    errors = m.errors + EXCLUDED.errors,
    throttles = m.throttles + EXCLUDED.throttles,
    cold_starts = m.cold_starts + EXCLUDED.cold_starts,
    duration_ms = m.duration_ms + EXCLUDED.duration_ms,
    buckets = ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0)
                    FROM unnest(m.buckets, EXCLUDED.buckets) WITH ORDINALITY AS t(a, b, i)
                    ORDER BY i),
    concurrency = GREATEST(m.concurrency, EXCLUDED.concurrency),
    gb_seconds = m.gb_seconds + EXCLUDED.gb_seconds,
    provisioned_gb_seconds = m.provisioned_gb_seconds + EXCLUDED.provisioned_gb_seconds
"""


class PostgresMetricSeries(Rollups):
    """MetricSeriesStore writing as `node_id` (the node's cluster id) and reading all nodes."""

    def __init__(self, url: str, node_id: str) -> None:
        if not node_id:
            raise ValueError("node_id: empty; give the node's cluster id (State.node_id)")
        self.node_id = node_id
        self.db = Database(url, SCHEMA, size=POOLS["metric_series"])

    def add(self, samples: Iterable[MinuteSample]) -> None:
        params = [(self.node_id, s.function, s.minute, s.invocations, s.errors, s.throttles,
                   s.cold_starts, s.duration_ms, list(s.buckets), s.concurrency, s.gb_seconds,
                   s.provisioned_gb_seconds) for s in samples]
        if not params:
            return
        with self.db.transaction() as conn, conn.cursor() as cur:  # all of them or none
            cur.executemany(_ADD, params)

    def series(self, function: str, since: int, until: int) -> list[MinuteSample]:
        rows = self.db.execute("SELECT * FROM metric_minutes WHERE function = %s AND "
                               "minute >= %s AND minute < %s", (function, since, until))
        return sorted(_across_nodes(rows), key=lambda s: s.minute)

    def window(self, since: int, until: int) -> list[MinuteSample]:
        return _across_nodes(self.db.execute(
            "SELECT * FROM metric_minutes WHERE minute >= %s AND minute < %s", (since, until)))

    def prune(self, before: int) -> int:
        with self.db.connection() as conn:
            return conn.execute("DELETE FROM metric_minutes WHERE minute < %s",
                                (before,)).rowcount

    def delete_function(self, function: str) -> None:
        # Every node's rows: the function is deleted for the whole cluster.
        self.db.execute("DELETE FROM metric_minutes WHERE function = %s", (function,))

    def close(self) -> None:
        self.db.close()


def _across_nodes(rows: list[dict]) -> list[MinuteSample]:
    """One sample per (function, minute): the nodes' rows of that minute summed, peaks too."""
    out: dict[tuple[str, int], MinuteSample] = {}
    for r in rows:
        s = _sample(r)
        total = out.get((s.function, s.minute))
        if total is None:
            out[(s.function, s.minute)] = s
            continue
        peak = total.concurrency + s.concurrency
        total.merge(s)
        total.concurrency = peak
    return list(out.values())


def _sample(r: dict) -> MinuteSample:
    buckets = list(r["buckets"])
    buckets += [0] * (N_BUCKETS - len(buckets))
    return MinuteSample(r["function"], r["minute"], r["invocations"], r["errors"],
                        r["throttles"], r["cold_starts"], r["duration_ms"],
                        buckets[:N_BUCKETS], r["concurrency"], r["gb_seconds"],
                        r["provisioned_gb_seconds"])
