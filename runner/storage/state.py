"""Where a Runner keeps its shared state: SQLite files in its data directory (the embedded
default), or a PostgreSQL database shared by the nodes of a cluster.

`open_state(url, data_dir)` is the one place that picks the implementations, so the Runner
holds stores by interface and never asks which kind it has. With PostgreSQL the data
directory still holds what is per node: the local code cache, logs, environments' scratch.
Code and layer contents are shared through a blob store (storage/blobs.py): the database's
code_blobs table, or an S3 bucket named by `code_store` (s3://BUCKET[/prefix]).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

EXPIRY_S = 10.0  # as storage/postgres/nodes.py (not imported here: SQLite needs no psycopg)


@dataclass
class State:
    registry: Any
    events: Any
    routes: Any
    url: str = ""  # "" for the embedded SQLite state
    node_id: str = ""
    nodes: Any = None  # NodeStore with PostgreSQL, None embedded
    heartbeat: "Heartbeat | None" = field(default=None, repr=False)
    # Both in the registry's database (aliases in its transactions, roles' writes bumping its
    # generation): storage/aliases.py, storage/roles.py and their postgres/ counterparts.
    aliases: Any = None
    roles: Any = None
    layers: Any = None  # storage/layers.py or postgres/layers.py (decision 077)
    blobs: Any = None  # the cluster's code blob store (storage/blobs.py), None embedded
    # Push triggers, topics (PushStore, storage/base.py) and the dashboard's minute series
    # (MetricSeriesStore): push.db and metrics.db on one node, tables shared by a cluster.
    push: Any = None
    series: Any = None

    @property
    def shared(self) -> bool:
        return bool(self.url)

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        for store in (self.events, self.routes, self.roles, self.push, self.series,
                      self.layers, self.registry, self.blobs, self.nodes):
            if store is not None:
                store.close()


def open_state(url: str | None, data_dir: str, *, capacity: int = 256, derived=None,
               code_store: str | None = None, s3_endpoint: str | None = None) -> State:
    """`derived`: FunctionVersion fields other stores derive from a configuration (the
    registry's `derived` hook: a version's layers and role), for either registry.
    `code_store`: s3://BUCKET[/prefix] to share code through S3 instead of the database
    (`s3_endpoint` or the AWS variables say where: storage/s3_blobs.py); PostgreSQL only."""
    if not url and code_store:
        from runner.errors import InvalidParameter

        raise InvalidParameter("--code-store", "a code store is shared by the nodes of a "
                               "cluster: it needs --state postgresql://... (the embedded "
                               "runner keeps code in its data directory)")
    if not url:
        from runner.storage.aliases import SQLiteAliasStore
        from runner.storage.events import EventStore
        from runner.storage.functions import SQLiteRegistry
        from runner.storage.layers import SQLiteLayerStore
        from runner.storage.metric_series import SQLiteMetricSeries
        from runner.storage.push import SQLitePushStore
        from runner.storage.roles import SQLiteRoleStore
        from runner.storage.routes import RouteStore

        registry = SQLiteRegistry(data_dir, derived=derived)
        return State(registry, EventStore(data_dir), RouteStore(data_dir),
                     aliases=SQLiteAliasStore(registry), roles=SQLiteRoleStore(data_dir),
                     push=SQLitePushStore(data_dir), series=SQLiteMetricSeries(data_dir),
                     layers=SQLiteLayerStore(data_dir))
    from runner.storage.blobs import ReadThrough
    from runner.storage.postgres import blob_gc
    from runner.storage.postgres.aliases import PostgresAliasStore
    from runner.storage.postgres.blobs import PostgresBlobStore
    from runner.storage.postgres.events import PostgresEventStore
    from runner.storage.postgres.functions import PostgresRegistry
    from runner.storage.postgres.layers import PostgresLayerStore
    from runner.storage.postgres.metric_series import PostgresMetricSeries
    from runner.storage.postgres.nodes import Node, NodeStore, new_node_id
    from runner.storage.postgres.push import PostgresPushStore
    from runner.storage.postgres.roles import PostgresRoleStore
    from runner.storage.postgres.routes import PostgresRouteStore

    # First: a bad --code-store (or an unreachable bucket) fails before this node registers.
    blobs = PostgresBlobStore(url)
    if code_store:  # S3 from now on; what the database holds from before is read through
        try:
            blobs = ReadThrough(open_code_store(code_store, s3_endpoint), blobs)
        except BaseException:
            blobs.close()
            raise
    node_id = new_node_id()
    nodes = NodeStore(url)
    # Registered (without a peer address yet) before the queue is opened: from its first
    # claim on, this node's leases are those of a live node.
    nodes.register(Node(node_id, "", capacity))
    heartbeat = Heartbeat(nodes, node_id)
    heartbeat.start()
    registry = PostgresRegistry(url, data_dir, derived=derived, blobs=blobs)
    heartbeat.chores.append((blob_gc.COLLECT_EVERY_S, lambda: blob_gc.collect(registry.db, blobs)))
    return State(registry, PostgresEventStore(url, node_id), PostgresRouteStore(url), url=url,
                 node_id=node_id, nodes=nodes, heartbeat=heartbeat,
                 aliases=PostgresAliasStore(registry), roles=PostgresRoleStore(registry.db),
                 push=PostgresPushStore(url), series=PostgresMetricSeries(url, node_id),
                 layers=PostgresLayerStore(registry.db, blobs, data_dir), blobs=blobs)


def open_code_store(url: str, s3_endpoint: str | None = None):
    """The S3 blob store `url` (s3://BUCKET[/prefix]) names; InvalidParameter if it cannot."""
    from runner.storage.s3_blobs import S3BlobStore, S3Location

    return S3BlobStore.open_store(S3Location.parse(url, s3_endpoint))


JANITOR_LEASE = "cluster-janitor"  # the singleton that forgets long-dead nodes
DEAD_NODE_HISTORY_S = 3600.0


class Heartbeat:
    """Renews this node's membership every HEARTBEAT_S (nodes.py). A heartbeat that fails
    (database down) is retried on the next tick; after EXPIRY_S without one, the other nodes
    take this node's leases -- the database decides, by its own clock.

    It also runs the cluster's janitor when it holds the JANITOR_LEASE (one node at a time,
    taken over EXPIRY_S after its holder dies): rows of nodes dead for an hour are removed,
    and each of `chores` ((period_s, fn): the code blob collector, postgres/blob_gc.py) runs
    at most every period_s."""

    def __init__(self, nodes, node_id: str) -> None:
        from runner.storage.postgres.nodes import HEARTBEAT_S

        self.nodes, self.node_id, self.interval = nodes, node_id, HEARTBEAT_S
        self.inflight = lambda: 0  # set by the edge: what it reports as load
        self.chores: list[tuple[float, Callable[[], object]]] = []
        self._last_chore: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.nodes.heartbeat(self.node_id, self.inflight()):
                    log.warning("node %s: membership row gone; not re-registering", self.node_id)
                if self.nodes.acquire(JANITOR_LEASE, self.node_id, EXPIRY_S):
                    self.nodes.prune(DEAD_NODE_HISTORY_S)
                    self._run_chores(time.monotonic())
            except Exception:
                log.exception("node %s: heartbeat failed; retrying", self.node_id)

    def _run_chores(self, now: float) -> None:
        for i, (period_s, chore) in enumerate(list(self.chores)):
            if now - self._last_chore.get(i, float("-inf")) >= period_s:
                self._last_chore[i] = now
                try:
                    chore()
                except Exception:  # one chore's failure (S3 down) must not stop the heartbeat
                    log.exception("node %s: janitor chore %r failed; retried next period",
                                  self.node_id, chore)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.nodes.leave(self.node_id)
        except Exception:
            log.exception("node %s: could not leave the cluster cleanly", self.node_id)
