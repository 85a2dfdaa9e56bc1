"""PostgreSQL connections as every PostgreSQL store uses them: a small pool, autocommit
outside explicit transactions, the schema applied once per database under an advisory lock.

Why a pool of our own: psycopg's pool is a separate package, and the stores need little -- a
bounded set of connections handed to one thread at a time. The gRPC server runs up to 352
RPC threads; a connection per thread would exhaust PostgreSQL's max_connections with a few
nodes, so threads wait for one of their store's pool instead (every statement here is a short
primary-key or index lookup, so the wait is short).

A node opens one pool per store (POOLS, the one place their sizes are set): at most
CONNECTIONS_PER_NODE connections, 34 today, 4 of them the workflow store's. A pool opens
connections on demand and keeps them idle afterwards, so a busy node holds all 34: PostgreSQL's
max_connections must be at least `max_connections(nodes)` (docs/cluster.md, "Capacity").

A connection broken under a caller (the database restarted, a network cut) is discarded with
every idle one, and the next caller opens a new one: a store survives a database restart after
the statements in flight (and at most one more) fail.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import psycopg
from psycopg.rows import dict_row

POOL_SIZE = 8  # the busy stores' pools (every invocation's registry reads, async events)
# Each store's pool on a node, by store module. The push API's schedule store is opened only
# with --push; counting it keeps the bound true either way.
POOLS = {"functions": POOL_SIZE, "events": POOL_SIZE, "mappings": 4, "workflows": 4,
         "nodes": 2, "routes": 2, "schedules": 2}
POOLS["push"] = 2  # triggers, topics (postgres/push.py): management calls and pushes
POOLS["metric_series"] = 2  # the minute series (postgres/metric_series.py): a flush every few s
# The PostgreSQL code blob store's (postgres/blobs.py), carved out of the registry's: a deploy
# writes its blob while it holds a registry connection, so one pool would deadlock once every
# connection is a deploy waiting for another (decision 077).
POOLS["functions"] -= 2
POOLS["blobs"] = 2
CONNECTIONS_PER_NODE = sum(POOLS.values())
# Connections PostgreSQL keeps for superusers (its superuser_reserved_connections default, 3)
# plus a few for psql, backups and monitoring.
RESERVED_CONNECTIONS = 10


def max_connections(nodes: int) -> int:
    """The max_connections a PostgreSQL serving `nodes` nodes (processes: `--workers N` on a
    host is N nodes) needs when every pool is full."""
    if nodes < 1:
        raise ValueError(f"nodes: {nodes!r}; give the number of runner processes (>= 1)")
    return nodes * CONNECTIONS_PER_NODE + RESERVED_CONNECTIONS
CONNECT_TIMEOUT_S = 10


class Database:
    """A pool of connections to one PostgreSQL database (`url`: postgresql://...)."""

    def __init__(self, url: str, schema: str = "", *, size: int = POOL_SIZE,
                 search_path: str = "") -> None:
        """`search_path`: a PostgreSQL schema (namespace) of its own for the tables, created
        if missing (the workflow store's tests give each test one); default the server's."""
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"state: {url!r} is not a postgresql:// URL")
        self.url = url
        self.search_path = search_path
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False
        if schema:
            self.apply_schema(schema)

    def _connect(self) -> psycopg.Connection:
        options = f"-c search_path={self.search_path}" if self.search_path else None
        return psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                               connect_timeout=CONNECT_TIMEOUT_S, options=options)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for the block, in autocommit mode (one statement, one transaction)."""
        if self._closed:
            raise RuntimeError("the database pool is closed")
        self._slots.acquire()
        conn = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            yield conn
        except BaseException:
            if conn is not None and (conn.closed or conn.broken):
                conn.close()
                conn = None  # never hand a dead connection to the next caller
                # One broken connection means the server went away (restart, failover): the
                # idle ones are broken too, so drop them all rather than fail a call per each.
                self._drop_idle()
            raise
        finally:
            if conn is not None and not conn.closed and not self._closed:
                self._idle.put(conn)
            elif conn is not None:
                conn.close()
            self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """BEGIN ... COMMIT around the block (ROLLBACK on an exception)."""
        with self.connection() as conn, conn.transaction():
            yield conn

    def execute(self, sql: str, params: Any = None) -> list[dict]:
        """One statement in its own transaction; its rows (empty if it returns none)."""
        with self.connection() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def one(self, sql: str, params: Any = None) -> dict | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def apply_schema(self, schema: str) -> None:
        """CREATE ... IF NOT EXISTS is not safe when two nodes start at once (both may try to
        create the same type and one fails), so the schema is applied under a transaction-level
        advisory lock: nodes starting together take turns, and the later ones find it done."""
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(7023001)")
            if self.search_path:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.search_path}")
            conn.execute(schema)

    def _drop_idle(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
