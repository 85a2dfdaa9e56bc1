"""What the dashboard shows, computed from the minute series: per-function summaries over a
window (with a sparkline per minute) and a function's chart series with empty minutes filled.

Both read the store and add the minutes still in memory (MinuteBuckets.peek), so a chart is
current to the invocation, not to the last flush.
"""

from __future__ import annotations

import time

from runner.metrics.minutes import MinuteBuckets
from runner.storage.metric_series import MetricSeriesStore, MinuteSample

MAX_WINDOW_S = 7 * 24 * 3600


def _bounds(window_s: int, now: float | None) -> tuple[int, int]:
    window_s = max(60, min(int(window_s), MAX_WINDOW_S))
    t = int(now if now is not None else time.time())
    until = t - t % 60 + 60  # the current minute included
    return until - window_s, until


def _merged(store: MetricSeriesStore, buckets: MinuteBuckets, since: int, until: int,
            function: str | None) -> dict[tuple[str, int], MinuteSample]:
    rows: dict[tuple[str, int], MinuteSample] = {}
    if function is None:
        stored = store.window(since, until)
    else:
        stored = store.series(function, since, until)
    for s in stored + [m for m in buckets.peek() if since <= m.minute < until
                       and (function is None or m.function == function)]:
        key = (s.function, s.minute)
        if key in rows:
            rows[key].merge(s)
        else:
            rows[key] = s
    return rows


def series(store: MetricSeriesStore, buckets: MinuteBuckets, function: str,
           window_s: int = 3600, now: float | None = None) -> list[dict]:
    """One point per minute of the window, oldest first; minutes with no traffic are zeros
    (p50/p99 None), so charts show gaps as quiet, not as missing."""
    since, until = _bounds(window_s, now)
    rows = _merged(store, buckets, since, until, function)
    return [(rows.get((function, m)) or MinuteSample(function, m)).to_dict()
            for m in range(since, until, 60)]


def summaries(store: MetricSeriesStore, buckets: MinuteBuckets, functions: list[str],
              window_s: int = 3600, now: float | None = None) -> dict[str, dict]:
    """Per function: totals over the window, p50/p99, the cold-start share and a sparkline
    (invocations per minute)."""
    since, until = _bounds(window_s, now)
    rows = _merged(store, buckets, since, until, None)
    out = {}
    for fn in functions:
        total = MinuteSample(fn, since)
        spark = []
        for m in range(since, until, 60):
            s = rows.get((fn, m))
            spark.append(s.invocations if s else 0)
            if s:
                total.merge(s)
        d = total.to_dict()
        d["cold_start_share"] = (round(total.cold_starts / total.invocations, 4)
                                 if total.invocations else 0.0)
        d["sparkline"] = spark
        out[fn] = d
    return out


def daily(store: MetricSeriesStore, buckets: MinuteBuckets, since_s: int,
          now: float | None = None) -> list[MinuteSample]:
    """Usage per function per UTC day over the last `since_s` seconds, the minutes still in
    memory included; ordered by day, then function."""
    t = int(now if now is not None else time.time())
    since, until = t - since_s, t + 60
    out: dict[tuple[int, str], MinuteSample] = {
        (s.minute, s.function): s for s in store.daily(since, until)}
    for m in buckets.peek():
        if since <= m.minute < until:
            day = m.minute - m.minute % 86400
            out.setdefault((day, m.function), MinuteSample(m.function, day)).merge(m)
    return [out[k] for k in sorted(out)]
