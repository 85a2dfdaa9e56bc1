"""Aliases: named pointers to a published version, with optional weighted routing.

An alias (Lambda's) names one published version of a function and, optionally, a second
version that receives a share of the invocations (`RoutingConfig.AdditionalVersionWeights`,
e.g. {"2": 0.1}). The store only records aliases; choosing the version of one invocation is
the invocation layer's job (Runner: `pick_version`).

Where they live: in the registry's own `aliases` table (registry.db), through the registry's
connection and lock, because the registry resolves `name:alias` qualifiers and deletes a
function's aliases with it; a separate database would let a function's delete and its
aliases' disagree after a crash. The table gains its extra columns (routing, description,
revision_id) once, in place, so registries written before this store load unchanged.

Reads on the invoke path (`get_cached`) are served from memory; every write here clears the
function's entries (and the registry's resolve cache), in the same process. One server
process owns a data directory (storage/data_dir.py), so no other writer can leave it stale.

On the shared state the same contract is kept by storage/postgres/aliases.py (the registry's
database, its advisory lock per function, its generation row for the other nodes' caches).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from runner.errors import InvalidParameter, PreconditionFailed, ResourceConflict, ResourceNotFound

_ALIAS_RE = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]{1,128}$")
MAX_ADDITIONAL_VERSIONS = 1  # Lambda routes between at most two versions


@dataclass(frozen=True)
class Alias:
    function: str
    name: str
    version: str  # a published version number, as text ("3")
    weights: Mapping[str, float] = field(default_factory=dict)  # other version -> share 0..1
    description: str = ""
    revision_id: str = ""


def validate_alias_name(name: str) -> str:
    if not isinstance(name, str) or not _ALIAS_RE.match(name):
        raise InvalidParameter(
            "Name", f"{name!r} is not a valid alias name; use 1-128 letters, digits, '-' or "
            "'_', not only digits (those name versions)")
    return name


def validate_weights(version: str, weights: Mapping[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for v, w in (weights or {}).items():
        if not (isinstance(v, str) and v.isascii() and v.isdigit()):
            raise InvalidParameter("AdditionalVersionWeights",
                                   f"{v!r} is not a published version number")
        if v == version:
            raise InvalidParameter("AdditionalVersionWeights",
                                   f"version {v} is the alias's own version; name another one")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
            raise InvalidParameter("AdditionalVersionWeights",
                                   f"weight {w!r} of version {v} is outside 0.0..1.0")
        out[v] = float(w)
    if len(out) > MAX_ADDITIONAL_VERSIONS:
        raise InvalidParameter("AdditionalVersionWeights",
                               "at most one additional version can share an alias's traffic")
    return out


def check_versions(function: str, version: str, weights: Mapping[str, float],
                   published: set[str]) -> None:
    """An alias and its weights name published versions of `function` (`published`), never
    $LATEST. Both stores call it with the versions they read under their write lock."""
    for v in [version, *weights]:
        if v == "$LATEST":
            raise InvalidParameter("FunctionVersion", "an alias names a published version, "
                                   "not $LATEST; publish one first (publish-version)")
        if v not in published:
            raise ResourceNotFound(
                f"Function not found: {function} version {v}; publish it first "
                f"(published: {', '.join(sorted(published, key=int)) or 'none'})")


def merged_target(current: Alias, version, weights, revision_id) -> tuple[str, dict[str, float]]:
    """An update's (version, weights): the given ones over `current`'s, validated, after the
    RevisionId check (PreconditionFailed when `revision_id` is not current's). Both stores."""
    if revision_id and revision_id != current.revision_id:
        raise PreconditionFailed(
            f"RevisionId: {revision_id!r} is not alias {current.name!r}'s current revision id "
            "(it changed since it was read); get the alias again and retry")
    new_version = current.version if version is None else str(version)
    new_weights = dict(current.weights) if weights is None else weights
    return new_version, validate_weights(new_version, new_weights)


class AliasStore(Protocol):
    """The aliases of functions. Every method raises ResourceNotFound naming what is missing."""

    def create(self, function: str, name: str, version: str,
               weights: Mapping[str, float] | None = None, description: str = "") -> Alias:
        """A new alias to a published `version` (and `weights`' versions); ResourceConflict if
        the alias exists, InvalidParameter for a bad name, version or weight."""

    def get(self, function: str, name: str) -> Alias:
        """The alias, from the database."""

    def get_cached(self, function: str, name: str) -> Alias | None:
        """The alias from memory (the invoke path), None if there is none."""

    def list(self, function: str, version: str | None = None) -> list[Alias]:
        """The function's aliases by name; only those routing to `version` when given."""

    def update(self, function: str, name: str, *, version: str | None = None,
               weights: Mapping[str, float] | None = None, description: str | None = None,
               revision_id: str | None = None) -> Alias:
        """Change what is given (weights={} removes routing); with `revision_id`, only if it
        is still the alias's (PreconditionFailed). A new RevisionId each time."""

    def delete(self, function: str, name: str) -> None:
        """Remove the alias."""

    def referencing(self, function: str, version: str) -> list[str]:
        """Names of the aliases that route to `version` (primary or weighted)."""

    def forget(self, function: str) -> None:
        """Drop this process's cached aliases of `function` (the function was deleted)."""


_COLUMNS = {"routing": "TEXT", "description": "TEXT", "revision_id": "TEXT"}


class SQLiteAliasStore:
    """AliasStore in the registry's database (see the module docstring)."""

    def __init__(self, registry) -> None:
        self._registry = registry
        self._db = registry._db
        self._lock = registry._lock
        self._cache: dict[tuple[str, str], Alias | None] = {}
        with self._lock:
            have = {r["name"] for r in self._db.execute("PRAGMA table_info(aliases)")}
            for col, kind in _COLUMNS.items():
                if col not in have:
                    self._db.execute(f"ALTER TABLE aliases ADD COLUMN {col} {kind}")

    # ------------------------------------------------------------------ writes

    def create(self, function, name, version, weights=None, description=""):
        validate_alias_name(name)
        weights = validate_weights(version, weights)
        with self._lock:
            self._check_versions(function, version, weights)
            if self._row(function, name) is not None:
                raise ResourceConflict(f"Alias already exists: {name} (function {function}); "
                                       "update it or pick another name")
            with self._registry._tx():
                self._db.execute(
                    "INSERT INTO aliases (name, alias, version, routing, description, "
                    "revision_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (function, name, int(version), json.dumps(weights), description or "",
                     str(uuid.uuid4())))
            self._changed(function)
            return self.get(function, name)

    def update(self, function, name, *, version=None, weights=None, description=None,
               revision_id=None):
        with self._lock:
            current = self.get(function, name)
            new_version, new_weights = merged_target(current, version, weights, revision_id)
            self._check_versions(function, new_version, new_weights)
            with self._registry._tx():
                self._db.execute(
                    "UPDATE aliases SET version = ?, routing = ?, description = ?, "
                    "revision_id = ? WHERE name = ? AND alias = ?",
                    (int(new_version), json.dumps(new_weights),
                     current.description if description is None else description,
                     str(uuid.uuid4()), function, name))
            self._changed(function)
            return self.get(function, name)

    def delete(self, function, name):
        with self._lock:
            self.get(function, name)
            with self._registry._tx():
                self._db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?",
                                 (function, name))
            self._changed(function)

    # ------------------------------------------------------------------ reads

    def get(self, function, name):
        with self._lock:
            row = self._row(function, name)
        if row is None:
            raise ResourceNotFound(f"Alias not found: {name} (function {function}); create it "
                                   "first (create-alias)")
        return alias_from_row(row)

    def get_cached(self, function, name):
        key = (function, name)
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self._lock:
            row = self._row(function, name)
            hit = None if row is None else alias_from_row(row)
            self._cache[key] = hit
            return hit

    def list(self, function, version=None):
        self._registry.resolve(function)  # ResourceNotFound for an unknown function
        with self._lock:
            rows = self._db.execute("SELECT * FROM aliases WHERE name = ? ORDER BY alias",
                                    (function,)).fetchall()
        out = [alias_from_row(r) for r in rows]
        if version is not None:
            out = [a for a in out if a.version == version or version in a.weights]
        return out

    def referencing(self, function, version):
        return [a.name for a in self.list(function, version)]

    # ------------------------------------------------------------------ internals

    def _row(self, function, name):
        return self._db.execute("SELECT * FROM aliases WHERE name = ? AND alias = ?",
                                (function, name)).fetchone()

    def _check_versions(self, function: str, version: str, weights: Mapping[str, float]) -> None:
        published = {str(v.version) for v in self._registry.list_versions(function)[1:]}
        check_versions(function, version, weights, published)

    def _changed(self, function: str) -> None:
        for key in [k for k in self._cache if k[0] == function]:
            del self._cache[key]
        self._registry._invalidate(function)

    def forget(self, function: str) -> None:
        """Drop cached entries of `function` (its registry entry was deleted)."""
        self._changed(function)


def alias_from_row(row) -> Alias:
    """An Alias from a row of the `aliases` table (sqlite3.Row or a PostgreSQL dict row); a
    registry written before routing, description and revision ids reads with their defaults."""
    keys = row.keys()
    routing = row["routing"] if "routing" in keys else None
    return Alias(function=row["name"], name=row["alias"], version=str(row["version"]),
                 weights=json.loads(routing) if routing else {},
                 description=row["description"] or "" if "description" in keys else "",
                 revision_id=row["revision_id"] or "" if "revision_id" in keys else "")
