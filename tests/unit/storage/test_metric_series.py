"""The contract of MetricSeriesStore (storage/metric_series.py), run against every
implementation: add merges, series/totals/daily read windows, prune and delete forget, and
what was added survives a reopen (the dashboard keeps its history across restarts)."""

from __future__ import annotations

import pytest

from runner.storage.metric_series import (
    DURATION_BOUNDS_MS,
    N_BUCKETS,
    MinuteSample,
    SQLiteMetricSeries,
    bucket_index,
    quantile_ms,
)

IMPLEMENTATIONS = {"sqlite": SQLiteMetricSeries}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request, tmp_path):
    opened = []

    def open_():
        store = IMPLEMENTATIONS[request.param](str(tmp_path))
        opened.append(store)
        return store

    yield open_
    for s in opened:
        try:
            s.close()
        except Exception:
            pass


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
