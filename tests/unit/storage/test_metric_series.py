"""The contract of MetricSeriesStore (storage/metric_series.py), run on SQLite and PostgreSQL
(the `state` fixture, tests/state_fixtures.py): add merges, series/totals/daily read windows,
prune and delete forget, and what was added survives a reopen (the dashboard keeps its
history across restarts). At the end, what only the shared store has: each node writes its
own rows and every node reads their sums (decision 078)."""

from __future__ import annotations

import pytest

from runner.storage.metric_series import (
    DURATION_BOUNDS_MS,
    N_BUCKETS,
    MinuteSample,
    bucket_index,
    quantile_ms,
)


@pytest.fixture
def open_store(state):
    """Opens the state's store again on each call (as one node restarting)."""
    return state.metric_series


def _sample(fn: str, minute: int, n: int = 1, errors: int = 0, ms: float = 3.0,
            conc: int = 1) -> MinuteSample:
    s = MinuteSample(fn, minute, invocations=n, errors=errors, duration_ms=ms * n,
                     concurrency=conc, gb_seconds=0.125 * n)
    s.buckets[bucket_index(ms)] += n
    return s


def test_add_merges_into_the_minute(open_store):
    store = open_store()
    store.add([_sample("f", 60, n=2, conc=3)])
    store.add([_sample("f", 60, n=1, errors=1, conc=1), _sample("g", 60)])
    [row] = store.series("f", 0, 120)
    assert (row.invocations, row.errors, row.concurrency) == (3, 1, 3)
    assert row.duration_ms == pytest.approx(9.0)
    assert row.gb_seconds == pytest.approx(0.375)
    assert sum(row.buckets) == 3 and len(row.buckets) == N_BUCKETS


def test_series_is_a_half_open_window_oldest_first(open_store):
    store = open_store()
    store.add([_sample("f", m) for m in (180, 60, 120, 240)])
    assert [s.minute for s in store.series("f", 60, 240)] == [60, 120, 180]
    assert store.series("other", 0, 1000) == []
    store.add([_sample("g", 120)])
    assert sorted((s.function, s.minute) for s in store.window(120, 181)) == [
        ("f", 120), ("f", 180), ("g", 120)]


def test_totals_and_daily(open_store):
    store = open_store()
    day = 86400
    store.add([_sample("f", 60, n=2), _sample("f", 120, n=3, errors=1), _sample("g", 60),
               _sample("f", day + 60, n=5)])
    totals = store.totals(0, day)
    assert totals["f"].invocations == 5 and totals["f"].errors == 1
    assert totals["g"].invocations == 1
    daily = store.daily(0, 2 * day)
    assert [(s.minute, s.function, s.invocations) for s in daily] == [
        (0, "f", 5), (0, "g", 1), (day, "f", 5)]


def test_prune_and_delete_function(open_store):
    store = open_store()
    store.add([_sample("f", 60), _sample("f", 600), _sample("g", 600)])
    assert store.prune(300) == 1
    assert [s.minute for s in store.series("f", 0, 10_000)] == [600]
    store.delete_function("f")
    assert store.series("f", 0, 10_000) == []
    assert len(store.series("g", 0, 10_000)) == 1


def test_what_was_added_survives_a_reopen(open_store):
    store = open_store()
    store.add([_sample("f", 60, n=4)])
    store.close()
    again = open_store()
    assert again.series("f", 0, 120)[0].invocations == 4


def test_quantiles_interpolate_within_a_bucket():
    buckets = [0] * N_BUCKETS
    assert quantile_ms(buckets, 0.5) is None
    buckets[bucket_index(3.0)] = 100  # all in (2.5, 5]
    assert 2.5 < quantile_ms(buckets, 0.5) <= 5
    buckets[-1] = 1  # one beyond 15 min: the last finite bound
    assert quantile_ms(buckets, 1.0) == DURATION_BOUNDS_MS[-1]


# ---------------------------------------------------------------- several nodes, one store


def test_each_node_writes_its_own_rows_and_reads_the_sums(pg_state):
    a, b = pg_state.metric_series("node-a"), pg_state.metric_series("node-b")
    a.add([_sample("f", 60, n=2, conc=3, ms=3.0)])
    a.add([_sample("f", 60, n=1, conc=2, ms=3.0)])  # node A's own row: counts add, peak max
    b.add([_sample("f", 60, n=4, errors=1, conc=5, ms=700.0), _sample("g", 120)])
    for node in (a, b):
        [row] = node.series("f", 0, 120)
        assert (row.invocations, row.errors) == (7, 1)
        # The nodes ran side by side: the cluster's peak is taken as the sum of theirs.
        assert row.concurrency == 3 + 5
        assert row.buckets[bucket_index(3.0)] == 3 and row.buckets[bucket_index(700.0)] == 4
        assert row.gb_seconds == pytest.approx(0.125 * 7)
        assert sorted((s.function, s.minute, s.invocations) for s in node.window(0, 180)) == [
            ("f", 60, 7), ("g", 120, 1)]
        assert node.totals(0, 180)["f"].invocations == 7
        assert [(s.function, s.invocations) for s in node.daily(0, 86400)] == [("f", 7), ("g", 1)]
    rows = pg_state.metric_series("node-c").db.execute(
        "SELECT node_id, invocations FROM metric_minutes WHERE function = 'f' ORDER BY node_id")
    assert [(r["node_id"], r["invocations"]) for r in rows] == [("node-a", 3), ("node-b", 4)]


def test_prune_and_delete_reach_every_nodes_rows(pg_state):
    a, b = pg_state.metric_series("node-a"), pg_state.metric_series("node-b")
    a.add([_sample("f", 60), _sample("f", 600)])
    b.add([_sample("f", 60), _sample("g", 600)])
    assert a.prune(300) == 2
    assert [s.minute for s in b.series("f", 0, 10_000)] == [600]
    b.delete_function("f")
    assert a.series("f", 0, 10_000) == [] and len(a.series("g", 0, 10_000)) == 1
