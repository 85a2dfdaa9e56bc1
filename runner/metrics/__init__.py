"""Metrics: Prometheus families on a registry the runner owns (`families.py`), what the layers
above call to count (`recorder.py`: `Metrics`, and `NullMetrics` that counts nothing),
gauges read at scrape time from the pool and the event queue (`host.py`), and the minute
buckets behind the dashboard's charts, written to the series store (`minutes.py`,
storage/metric_series.py). docs/observability.md has the metric table.

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.storage`.
"""

from runner.metrics.recorder import CONTENT_TYPE_LATEST, Metrics, NullMetrics

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "NullMetrics"]
