"""HTTP routes on PostgreSQL: the contract of storage/routes.py, shared by every node.

`version` is what the HTTP edge compares to know when to rebuild its compiled table. On one
node it counts local changes; in a cluster a route added through another node must be seen
too, so here it is the table's change counter in the database (`routes_generation`), read at
most every VERSION_CHECK_S: a route change reaches every node within that bound.
"""

from __future__ import annotations

import threading
import time

from runner.errors import ResourceNotFound
from runner.model import validate_name
from runner.storage.postgres.connection import POOLS, Database
from runner.storage.routes import Route, normalize_method, parse_pattern

VERSION_CHECK_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    function    TEXT NOT NULL,
    qualifier   TEXT NOT NULL DEFAULT '',
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (method, path)
);
CREATE TABLE IF NOT EXISTS routes_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    n           BIGINT NOT NULL
);
INSERT INTO routes_generation VALUES (1, 0) ON CONFLICT DO NOTHING;
"""

_BUMP = "UPDATE routes_generation SET n = n + 1 WHERE id = 1"


class PostgresRouteStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, size=POOLS["routes"])
        self._lock = threading.Lock()
        self._version = 0
        self._checked_at = 0.0

    @property
    def version(self) -> int:
        now = time.monotonic()
        if now - self._checked_at >= VERSION_CHECK_S:
            with self._lock:
                self._version = self.db.one("SELECT n FROM routes_generation WHERE id = 1")["n"]
                self._checked_at = now
        return self._version

    def _changed(self) -> None:
        self._checked_at = 0.0  # this node sees its own change at once

    def add(self, method: str, path: str, function: str, qualifier: str = "") -> Route:
        route = Route(normalize_method(method), path, validate_name(function, "function"),
                      qualifier or "", time.time())
        parse_pattern(path)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO routes (method, path, function, qualifier, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (method, path) DO UPDATE SET "
                "function = excluded.function, qualifier = excluded.qualifier",
                (route.method, route.path, route.function, route.qualifier, route.created_at))
            conn.execute(_BUMP)
        self._changed()
        return route

    def delete(self, method: str, path: str) -> Route:
        m = normalize_method(method)
        with self.db.transaction() as conn:
            row = conn.execute("DELETE FROM routes WHERE method = %s AND path = %s RETURNING *",
                               (m, path)).fetchone()
            if row is None:
                raise ResourceNotFound(f"route not found: {m} {path}; see `runner route list`")
            conn.execute(_BUMP)
        self._changed()
        return _route(row)

    def delete_function(self, function: str) -> int:
        with self.db.transaction() as conn:
            n = conn.execute("DELETE FROM routes WHERE function = %s", (function,)).rowcount
            if n:
                conn.execute(_BUMP)
        self._changed()
        return n

    def list(self) -> list[Route]:
        return [_route(r) for r in self.db.execute("SELECT * FROM routes ORDER BY path COLLATE \"C\", method COLLATE \"C\"")]

    def close(self) -> None:
        self.db.close()


def _route(r: dict) -> Route:
    return Route(r["method"], r["path"], r["function"], r["qualifier"], r["created_at"])
