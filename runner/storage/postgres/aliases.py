"""Aliases on the shared state: the AliasStore contract of storage/aliases.py, kept in the
PostgreSQL registry's own `aliases` table (functions.py declares it and its columns).

Why in the registry's database and through its pool: the registry resolves `name:alias`
qualifiers from that table and deletes a function's aliases in the transaction that deletes
the function, so an alias can never outlive its function, on any node.

How the SQLite store's guarantees carry over to several nodes:

* Serialised writes: every alias write takes the registry's transaction-level advisory lock
  on the function's name before reading anything, as deploy, publish and delete_version do.
  The versions an alias names are read under that lock, so no node can delete a version
  between the check and the write (delete_version checks the aliases under the same lock).
* Other nodes' caches: every write bumps `registry_generation` in its transaction. The
  registry's resolve cache (which holds `name:alias` qualifiers) and this store's get_cached
  entries are dropped together when a node sees the generation move, at most
  GENERATION_CHECK_S later (functions.py).
* The invoke path: get_cached is a dictionary read plus the registry's once-a-second
  generation check; a miss is one primary-key lookup.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Mapping

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.aliases import (
    Alias,
    alias_from_row,
    check_versions,
    merged_target,
    validate_alias_name,
    validate_weights,
)
from runner.storage.postgres.functions import _BUMP, _LOCK

_ROW = "SELECT * FROM aliases WHERE name = %s AND alias = %s"


class PostgresAliasStore:
    """AliasStore on a PostgresRegistry's database (see the module docstring)."""

    def __init__(self, registry) -> None:
        self._registry = registry
        self._db = registry.db
        self._lock = threading.Lock()  # guards the cache and the epoch it belongs to
        self._cache: dict[tuple[str, str], Alias | None] = {}
        self._epoch = -1  # the registry's cache_epoch() the entries were read in

    # ------------------------------------------------------------------ writes

    def create(self, function, name, version, weights=None, description=""):
        validate_alias_name(name)
        weights = validate_weights(version, weights)
        with self._db.transaction() as conn:
            conn.execute(_LOCK, (function,))
            self._check_versions(conn, function, version, weights)
            if conn.execute(_ROW, (function, name)).fetchone() is not None:
                raise ResourceConflict(f"Alias already exists: {name} (function {function}); "
                                       "update it or pick another name")
            row = conn.execute(
                "INSERT INTO aliases (name, alias, version, routing, description, revision_id) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (function, name, int(version), json.dumps(weights), description or "",
                 str(uuid.uuid4()))).fetchone()
            conn.execute(_BUMP)
        self._changed(function)
        return alias_from_row(row)

    def update(self, function, name, *, version=None, weights=None, description=None,
               revision_id=None):
        with self._db.transaction() as conn:
            conn.execute(_LOCK, (function,))
            found = conn.execute(_ROW, (function, name)).fetchone()
            if found is None:
                raise _not_found(function, name)
            current = alias_from_row(found)
            new_version, new_weights = merged_target(current, version, weights, revision_id)
            self._check_versions(conn, function, new_version, new_weights)
            row = conn.execute(
                "UPDATE aliases SET version = %s, routing = %s, description = %s, "
                "revision_id = %s WHERE name = %s AND alias = %s RETURNING *",
                (int(new_version), json.dumps(new_weights),
                 current.description if description is None else description,
                 str(uuid.uuid4()), function, name)).fetchone()
            conn.execute(_BUMP)
        self._changed(function)
        return alias_from_row(row)

    def delete(self, function, name):
        with self._db.transaction() as conn:
            conn.execute(_LOCK, (function,))
            gone = conn.execute("DELETE FROM aliases WHERE name = %s AND alias = %s "
                                "RETURNING alias", (function, name)).fetchone()
            if gone is None:
                raise _not_found(function, name)
            conn.execute(_BUMP)
        self._changed(function)

    # ------------------------------------------------------------------ reads

    def get(self, function, name):
        row = self._db.one(_ROW, (function, name))
        if row is None:
            raise _not_found(function, name)
        return alias_from_row(row)

    def get_cached(self, function, name):
        key = (function, name)
        epoch = self._registry.cache_epoch()
        if epoch != self._epoch:
            with self._lock:
                if epoch != self._epoch:
                    self._cache.clear()
                    self._epoch = epoch
        try:
            return self._cache[key]
        except KeyError:
            pass
        row = self._db.one(_ROW, (function, name))
        hit = None if row is None else alias_from_row(row)
        now = self._registry.cache_epoch()
        with self._lock:
            # Kept only if no write (here or on another node, as far as this node has seen)
            # landed while the row was read: it could predate that write.
            if self._epoch == epoch == now:
                self._cache[key] = hit
        return hit

    def list(self, function, version=None):
        if self._db.one("SELECT 1 FROM functions WHERE name = %s", (function,)) is None:
            raise ResourceNotFound(f"function not found: {function}")
        rows = self._db.execute("SELECT * FROM aliases WHERE name = %s ORDER BY alias",
                                (function,))
        out = [alias_from_row(r) for r in rows]
        if version is not None:
            out = [a for a in out if a.version == version or version in a.weights]
        return out

    def referencing(self, function, version):
        return [a.name for a in self.list(function, version)]

    def forget(self, function: str) -> None:
        """Drop this node's cached aliases of `function` (its registry entry was deleted)."""
        self._changed(function)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_versions(conn, function: str, version: str, weights: Mapping[str, float]) -> None:
        """Under the function's lock: it exists and the versions named are published."""
        if conn.execute("SELECT 1 FROM functions WHERE name = %s", (function,)).fetchone() is None:
            raise ResourceNotFound(f"function not found: {function}; create it first")
        published = {str(r["version"]) for r in conn.execute(
            "SELECT version FROM versions WHERE name = %s", (function,))}
        check_versions(function, version, weights, published)

    def _changed(self, function: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == function]:
                del self._cache[key]
        self._registry.forget(function)


def _not_found(function: str, name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Alias not found: {name} (function {function}); create it first "
                            "(create-alias)")
