"""HTTP routes: METHOD + path pattern -> function, stored durably in registry.db.

Pattern syntax (API Gateway HTTP API's): the path starts with '/', segments are literals,
`{name}` (one whole segment) or, as the last segment only, the greedy `{name+}` that matches
one or more remaining segments. The method is an HTTP method or ANY.

The table lives in registry.db beside the functions it points at, on its own connection:
WAL lets the two connections work side by side, and route writes are as rare as deploys.
A route may name a function that does not exist (yet); requests then get 404/ResourceNotFound,
as API Gateway answers for an integration whose function was deleted.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass

from runner.errors import InvalidParameter, ResourceNotFound
from runner.model import validate_name
from runner.storage.sqlite import open_database

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")

SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    function    TEXT NOT NULL,
    qualifier   TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    PRIMARY KEY (method, path)
);
"""

_LITERAL_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*,;=:@%-]+$")
_PARAM_RE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    qualifier: str = ""
    created_at: float = 0.0

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey, e.g. "GET /items/{id}"."""
        return f"{self.method} {self.path}"


def parse_pattern(path: str) -> list[tuple[str, str]]:
    """The segments of a path pattern as (kind, value): ("lit", text), ("param", name) or
    ("greedy", name). Raises InvalidParameter naming what is wrong."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidParameter("path", f"{path!r} must start with '/' (e.g. /items/{{id}})")
    if path == "/":
        return []
    parts = path[1:].split("/")
    out: list[tuple[str, str]] = []
    names: set[str] = set()
    for i, part in enumerate(parts):
        m = _PARAM_RE.match(part)
        if m:
            name, greedy = m.group(1), bool(m.group(2))
            if name in names:
                raise InvalidParameter("path", f"{path!r} uses parameter {{{name}}} twice; "
                                       "give each parameter its own name")
            names.add(name)
            if greedy and i != len(parts) - 1:
                raise InvalidParameter("path", f"{path!r}: the greedy {{{name}+}} must be the "
                                       "last segment")
            out.append(("greedy" if greedy else "param", name))
        elif part and _LITERAL_RE.match(part):
            out.append(("lit", part))
        else:
            raise InvalidParameter(
                "path", f"{path!r}: segment {part!r} is not a literal or a whole-segment "
                "parameter like {id} or {proxy+}")
    return out


def normalize_method(method: str) -> str:
    m = (method or "").strip().upper()
    if m not in METHODS:
        raise InvalidParameter("method", f"{method!r} is not one of {', '.join(METHODS)}")
    return m


class RouteStore:
    """Durable routes. Thread-safe; `version` increases with every change so readers can
    cache the compiled table and notice when to rebuild it."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        # busy_timeout: the registry's own connection to registry.db may hold the write lock.
        self._db = open_database(os.path.join(data_dir, "registry.db"), SCHEMA,
                                 busy_timeout_ms=5000)
        self._lock = threading.Lock()
        self.version = 0

    def add(self, method: str, path: str, function: str, qualifier: str = "") -> Route:
        """Add a route, or repoint an existing METHOD + path at another function."""
        route = Route(normalize_method(method), path, validate_name(function, "function"),
                      qualifier or "", time.time())
        parse_pattern(path)
        with self._lock:
            self._db.execute(
                "INSERT INTO routes (method, path, function, qualifier, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(method, path) DO UPDATE SET "
                "function = excluded.function, qualifier = excluded.qualifier",
                (route.method, route.path, route.function, route.qualifier, route.created_at),
            )
            self.version += 1
        return route

    def delete(self, method: str, path: str) -> Route:
        m = normalize_method(method)
        with self._lock:
            row = self._db.execute("SELECT * FROM routes WHERE method = ? AND path = ?",
                                   (m, path)).fetchone()
            if row is None:
                raise ResourceNotFound(f"route not found: {m} {path}; see `runner route list`")
            self._db.execute("DELETE FROM routes WHERE method = ? AND path = ?", (m, path))
            self.version += 1
        return _route(row)

    def delete_function(self, function: str) -> int:
        """Remove every route to `function` (it was deleted); returns how many."""
        with self._lock:
            n = self._db.execute("DELETE FROM routes WHERE function = ?", (function,)).rowcount
            if n:
                self.version += 1
        return n

    def list(self) -> list[Route]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM routes ORDER BY path, method").fetchall()
        return [_route(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _route(r: sqlite3.Row) -> Route:
    return Route(r["method"], r["path"], r["function"], r["qualifier"], r["created_at"])
