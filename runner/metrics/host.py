"""Gauges read at scrape time from their owners (the pool, the event queue), not kept up to
date on every change: a scrape every 15 s costs less than bookkeeping on every invocation,
and the value is the owner's own, so it cannot drift from it.

`HostCollector` gets plain callables, not the pool or the store: the metrics layer sits below
the invocation layer that owns them (tests/unit/test_layering.py).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runner.confinement import limits

log = logging.getLogger(__name__)

# (version, idle, busy, starting) per live version pool: PoolManager.environment_counts().
Counts = Callable[[], Iterable[tuple]]


class HostCollector(Collector):
    def __init__(self, counts: Counts, queue_depth: Callable[[], int]) -> None:
        self._counts = counts
        self._queue_depth = queue_depth

    def collect(self):
        envs = GaugeMetricFamily("lambda_environments", "Execution environments by function "
                                 "and state (idle, busy, starting)",
                                 labels=["function", "state"])
        host = GaugeMetricFamily("runner_environments", "Execution environments on this host "
                                 "by runtime and state", labels=["runtime", "state"])
        provisioned = GaugeMetricFamily("lambda_provisioned_concurrency", "Provisioned "
                                        "environments configured (ProvisionedConcurrentExecutions)",
                                        labels=["function"])
        per_fn: dict[tuple[str, str], int] = {}
        per_rt: dict[tuple[str, str], int] = {}
        prov: dict[str, int] = {}
        for version, idle, busy, starting in self._counts():
            for state, n in (("idle", idle), ("busy", busy), ("starting", starting)):
                per_fn[(version.name, state)] = per_fn.get((version.name, state), 0) + n
                rt = version.config.runtime
                per_rt[(rt, state)] = per_rt.get((rt, state), 0) + n
            if version.config.provisioned:
                prov[version.name] = prov.get(version.name, 0) + version.config.provisioned
        for (fn, state), n in sorted(per_fn.items()):
            envs.add_metric([fn, state], n)
        for (rt, state), n in sorted(per_rt.items()):
            host.add_metric([rt, state], n)
        for fn, n in sorted(prov.items()):
            provisioned.add_metric([fn], n)
        yield envs
        yield host
        yield provisioned
        used = environments_memory_bytes()
        if used is not None:
            mem = GaugeMetricFamily("runner_environments_memory_bytes", "Memory charged to the "
                                    "environments' cgroups (and the Python zygotes'), in total")
            mem.add_metric([], used)
            yield mem
        depth = GaugeMetricFamily("runner_async_queue_depth", "Asynchronous events accepted "
                                  "and not yet finished")
        try:
            depth.add_metric([], self._queue_depth())
        except Exception:  # a closed store at shutdown: leave the gauge out, not the scrape
            log.debug("metrics: queue depth unavailable", exc_info=True)
            return
        yield depth


def environments_memory_bytes() -> int | None:
    """What the parent cgroup of every environment holds (memory.current, v1's
    memory.usage_in_bytes), or None without cgroups. Read only once the runner has set its
    layout up: a scrape must not be what detects it (detection may move processes)."""
    if not limits.cgroup_layout.cache_info().currsize:
        return None
    layout = limits.cgroup_layout()
    if layout is None:
        return None
    if layout.version == 2:
        path = os.path.join(layout.parents[""], "memory.current")
    else:
        path = os.path.join(layout.parents.get("memory", ""), "memory.usage_in_bytes")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def provisioned_charge(counts: Counts, charge: Callable[[str, float], None]) -> Callable[[float], None]:
    """A SeriesWriter tick: every provisioned environment configured is charged its memory
    for the elapsed seconds, as Lambda bills provisioned concurrency (whether used or not)."""

    def tick(elapsed_s: float) -> None:
        seen: set[str] = set()
        for version, *_ in counts():
            n = version.config.provisioned
            if n and version.key not in seen:
                seen.add(version.key)
                charge(version.name, n * version.config.memory_mb / 1024.0 * elapsed_s)

    return tick
