"""Matching a request's method and path against the stored routes.

Precedence follows API Gateway HTTP APIs ("the most specific route wins"): segment by
segment from the left, a literal beats a `{param}`, which beats a greedy `{proxy+}`; between
equally specific paths, a route for the request's method beats ANY. The compiled table is
rebuilt only when the routes' version changes (Runner.routes_version, RouteStore.version), so
a match costs no database read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from runner.storage.routes import Route, parse_pattern

_RANK = {"lit": 0, "param": 1, "greedy": 2}


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class _Compiled:
    route: Route
    segments: tuple[tuple[str, str], ...]
    rank: tuple[int, ...]


class Router:
    """Matches requests against the routes `list_routes()` returns, recompiled when
    `version()` moves."""

    def __init__(self, list_routes: Callable[[], list[Route]], version: Callable[[], int]) -> None:
        self._list_routes = list_routes
        self._source_version = version
        self._lock = threading.Lock()
        self._version = -1
        self._table: list[_Compiled] = []

    def _compiled(self) -> list[_Compiled]:
        if self._version != self._source_version():
            with self._lock:
                # The version is read before the list: a change in between leaves the table
                # newer than its version says, so the next match rebuilds it again; never older.
                version = self._source_version()
                table = []
                for r in self._list_routes():
                    segs = tuple(parse_pattern(r.path))
                    table.append(_Compiled(r, segs, tuple(_RANK[k] for k, _ in segs)))
                self._table, self._version = table, version
        return self._table

    def match(self, method: str, raw_path: str) -> Match | None:
        """The best route for `method` and the undecoded request path, or None (404)."""
        parts = [] if raw_path in ("", "/") else raw_path[1:].split("/")
        best: tuple[tuple, Match] | None = None
        for c in self._compiled():
            if c.route.method not in (method, "ANY"):
                continue
            params = _match_segments(c.segments, parts)
            if params is None:
                continue
            key = (c.rank, 1 if c.route.method == "ANY" else 0)
            if best is None or key < best[0]:
                best = (key, Match(c.route, params))
        return None if best is None else best[1]


def _match_segments(segments: tuple[tuple[str, str], ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, (kind, value) in enumerate(segments):
        if kind == "greedy":
            rest = parts[i:]
            if not rest or not any(rest):
                return None  # {proxy+} needs at least one non-empty segment
            params[value] = unquote("/".join(rest))
            return params
        if i >= len(parts):
            return None
        part = parts[i]
        if kind == "lit":
            if unquote(part) != unquote(value):
                return None
        else:
            if not part:
                return None
            params[value] = unquote(part)
    return params if len(parts) == len(segments) else None
