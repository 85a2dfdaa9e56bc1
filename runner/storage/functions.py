"""The SQLite registry (see base.py for the data model).

One connection guarded by a lock: registry writes are rare (deploys), reads on the invoke path
are served from an in-memory cache of resolved versions that every write invalidates. WAL mode
and synchronous=FULL: a deploy that returned is on disk and survives kill -9.

Every write decides under the lock, from the state it is about to change: a partial update
merges its changes into the configuration as it is at the write (never as the caller read it
earlier, which lost concurrent updates), and a caller's RevisionId is compared with the current
one in the same critical section (docs/decisions/046-optimistic-concurrency.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import AbstractContextManager
from typing import Any, Callable, Mapping

from runner.errors import InvalidParameter, PreconditionFailed, ResourceNotFound
from runner.model import LATEST, FunctionConfig, FunctionVersion, validate_name
from runner.storage.code import CodeStore
from runner.storage.sqlite import Transaction, open_database
from runner.storage.updates import UpdateClaims

# What deploy() takes as the new configuration: the whole of it, or a merge that gets the
# current one (None when the function does not exist yet) under the registry's lock.
ConfigOrMerge = FunctionConfig | Callable[[FunctionConfig | None], FunctionConfig]

SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (
    revision    INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size   INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    revision_id TEXT               -- Lambda's RevisionId: a uuid4, new on each deploy and publish
);
CREATE TABLE IF NOT EXISTS functions (
    name        TEXT PRIMARY KEY,
    latest      INTEGER NOT NULL REFERENCES revisions(revision),
    created_at  REAL NOT NULL,
    uid         TEXT               -- the function's identity: a uuid4 made when it is created
);
CREATE TABLE IF NOT EXISTS versions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    revision    INTEGER NOT NULL REFERENCES revisions(revision),
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    name        TEXT NOT NULL,
    alias       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
);
"""


class SQLiteRegistry:
    def __init__(self, data_dir: str,
                 derived: Callable[[FunctionConfig], dict] | None = None) -> None:
        os.makedirs(data_dir, exist_ok=True)
        # The FunctionVersion fields derived from a configuration by other stores (issue 20:
        # opt_dir from the layers, role_env and role_generation from the role), or None.
        self._derived = derived
        self.code = CodeStore(os.path.join(data_dir, "code"))
        self.db_path = os.path.join(data_dir, "registry.db")
        self._db = open_database(self.db_path, SCHEMA)
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], FunctionVersion] = {}
        self._revision_ids: dict[int, str] = {}  # revision -> its RevisionId, kept by writes
        self._updates = UpdateClaims()
        self._add_revision_ids()
        self._add_function_uids()

    # ------------------------------------------------------------------ writes

    def deploy(
        self,
        name: str,
        config: ConfigOrMerge,
        code: bytes | None,
        validate: Callable[[FunctionVersion], None] | None = None,
        *,
        revision_id: str | None = None,
    ) -> FunctionVersion:
        """See base.py. `validate` sees the would-be version (code stored, nothing committed)
        and may raise to abort the deploy with nothing changed."""
        validate_name(name)
        with self._lock:
            current = self._latest_row(name)
            check_revision_id(name, current, revision_id)
            if not isinstance(config, FunctionConfig):
                config = config(None if current is None else self._config(current))
            if code is None:
                if current is None:
                    raise InvalidParameter("code", f"function {name!r} does not exist yet; "
                                           "the first deploy must include code")
                digest, size = current["code_sha256"], current["code_size"]
                if self._config(current).runtime != config.runtime:
                    raise InvalidParameter("runtime", "changing the runtime needs new code; "
                                           "deploy again with the code package")
            else:
                digest, _ = self.code.put(code, config.runtime)
                size = len(code)
            now = time.time()
            if validate is not None:
                validate(FunctionVersion(name, LATEST, 0, config, digest, self.code.path(digest), now,
                                         **self._derived_fields(config)))
            new_id = str(uuid.uuid4())
            with self._tx():
                cur = self._db.execute(
                    "INSERT INTO revisions (name, config, code_sha256, code_size, created_at, "
                    "revision_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (name, json.dumps(config.to_dict()), digest, size, now, new_id),
                )
                rev = cur.lastrowid
                # A new function gets a new identity; an update keeps it (ON CONFLICT).
                self._db.execute(
                    "INSERT INTO functions (name, latest, created_at, uid) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET latest = excluded.latest",
                    (name, rev, now, str(uuid.uuid4())),
                )
            self._revision_ids[rev] = new_id
            self._invalidate(name)
            return self.resolve(name)

    def publish(self, name: str, *, revision_id: str | None = None) -> FunctionVersion:
        with self._lock:
            latest = self.resolve(name)
            check_revision_id(name, self._latest_row(name), revision_id)
            row = self._db.execute(
                "SELECT version FROM versions WHERE name = ? AND revision = ?", (name, latest.revision)
            ).fetchone()
            if row is None:
                (last,) = self._db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?", (name,)
                ).fetchone()
                # Publishing changes the function (Lambda gives $LATEST a new RevisionId), and
                # the version shares the frozen revision's row, so it shows the new id too.
                new_id = str(uuid.uuid4())
                with self._tx():
                    self._db.execute(
                        "INSERT INTO versions (name, version, revision) VALUES (?, ?, ?)",
                        (name, last + 1, latest.revision),
                    )
                    self._db.execute("UPDATE revisions SET revision_id = ? WHERE revision = ?",
                                     (new_id, latest.revision))
                self._revision_ids[latest.revision] = new_id
                number = last + 1
            else:
                number = row[0]
            self._invalidate(name)
            return self.resolve(name, str(number))

    def delete(self, name: str) -> list[FunctionVersion]:
        with self._lock:
            removed = self.list_versions(name)  # raises ResourceNotFound
            revisions = [r[0] for r in self._db.execute(
                "SELECT revision FROM revisions WHERE name = ?", (name,))]
            with self._tx():
                for table in ("aliases", "versions", "functions", "revisions"):
                    self._db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))
            for rev in revisions:
                self._revision_ids.pop(rev, None)
            self._invalidate(name)
            return removed

    def delete_version(self, name: str, version: str) -> FunctionVersion:
        """See base.py: removes one published version (its revision row stays while $LATEST
        or another version uses it; code is collected at start-up when none does)."""
        with self._lock:
            if not (version.isascii() and version.isdigit()):
                raise InvalidParameter("Qualifier", f"{version!r} is not a version number; "
                                       "delete an alias with delete-alias")
            removed = self.resolve(name, version)  # ResourceNotFound
            with self._tx():
                self._db.execute("DELETE FROM versions WHERE name = ? AND version = ?",
                                 (name, int(version)))
            self._invalidate(name)
            return removed

    def updating(self, name: str) -> AbstractContextManager[None]:
        """See base.py: holds `name` as "update in progress" (ResourceConflict if it is)."""
        return self._updates.claim(name)

    def unreferenced_code(self) -> set[str]:
        """Code digests no revision uses any more (safe to delete once no environment runs)."""
        with self._lock:
            used = {r[0] for r in self._db.execute("SELECT DISTINCT code_sha256 FROM revisions")}
        return self.code.digests() - used

    # ------------------------------------------------------------------ reads

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        key = (name, qualifier or LATEST)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        validate_name(name)  # an invalid name is a ValidationError, never "not found"
        with self._lock:
            version = self._resolve_uncached(name, key[1])
            self._cache[key] = version
            return version

    def _resolve_uncached(self, name: str, qualifier: str) -> FunctionVersion:
        if qualifier == LATEST:
            row = self._latest_row(name)
            label = LATEST
        else:
            number = qualifier
            # ASCII digits only ("²" and "١" are digits to str.isdigit), in their canonical form
            # ("01" is not version 1's label), and in SQLite's integer range.
            numeric = qualifier.isascii() and qualifier.isdigit()
            if numeric and (str(int(qualifier)) != qualifier or int(qualifier) >= 1 << 63):
                raise ResourceNotFound(f"function {name!r} has no version {qualifier!r}")
            if not numeric:
                alias = self._db.execute(
                    "SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, qualifier)
                ).fetchone()
                if alias is None:
                    raise ResourceNotFound(
                        f"function {name!r} has no version or alias {qualifier!r}"
                        if self._latest_row(name) else f"function not found: {name}"
                    )
                number = str(alias[0])
            row = self._db.execute(
                "SELECT r.* FROM versions v JOIN revisions r ON r.revision = v.revision "
                "WHERE v.name = ? AND v.version = ?", (name, int(number))
            ).fetchone()
            label = number
        if row is None:
            raise ResourceNotFound(f"function not found: {name}" + (
                "" if qualifier == LATEST else f" (qualifier {qualifier!r})"))
        return self._version(row, label)

    def list_functions(self) -> list[FunctionVersion]:
        with self._lock:
            names = [r[0] for r in self._db.execute("SELECT name FROM functions ORDER BY name")]
        return [self.resolve(n) for n in names]

    def revision_id(self, version: FunctionVersion) -> str:
        """See base.py. Lock-free when known: GetFunction and ListFunctions call it for every
        version they describe, and a deploy holds the lock while it prepares."""
        hit = self._revision_ids.get(version.revision)
        if hit is not None:
            return hit
        with self._lock:
            row = self._db.execute("SELECT revision_id FROM revisions WHERE revision = ?",
                                   (version.revision,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"function not found: {version.name} "
                                       f"(revision {version.revision} was deleted)")
            self._revision_ids[version.revision] = row[0]
            return row[0]

    def published_revisions(self, name: str) -> set[int]:
        with self._lock:
            return {r[0] for r in self._db.execute(
                "SELECT revision FROM versions WHERE name = ?", (name,))}

    def list_versions(self, name: str) -> list[FunctionVersion]:
        latest = self.resolve(name)
        with self._lock:
            numbers = [r[0] for r in self._db.execute(
                "SELECT version FROM versions WHERE name = ? ORDER BY version", (name,))]
        return [latest] + [self.resolve(name, str(n)) for n in numbers]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ internals

    def _add_revision_ids(self) -> None:
        """Registries written before RevisionIds existed gain the column, and each revision an
        id, once: ids are stored, not derived, so a restart keeps every one."""
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(revisions)")}
        with self._tx():
            if "revision_id" not in columns:
                self._db.execute("ALTER TABLE revisions ADD COLUMN revision_id TEXT")
            missing = [r[0] for r in self._db.execute(
                "SELECT revision FROM revisions WHERE revision_id IS NULL")]
            for rev in missing:
                self._db.execute("UPDATE revisions SET revision_id = ? WHERE revision = ?",
                                 (str(uuid.uuid4()), rev))

    def _latest_row(self, name: str) -> sqlite3.Row | None:
        return self._db.execute(
            "SELECT r.* FROM functions f JOIN revisions r ON r.revision = f.latest WHERE f.name = ?",
            (name,),
        ).fetchone()

    def _add_function_uids(self) -> None:
        """A registry from before identities: give each function one, once."""
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(functions)")}
        with self._tx():
            if "uid" not in columns:
                self._db.execute("ALTER TABLE functions ADD COLUMN uid TEXT")
            for (name,) in self._db.execute("SELECT name FROM functions WHERE uid IS NULL").fetchall():
                self._db.execute("UPDATE functions SET uid = ? WHERE name = ?",
                                 (str(uuid.uuid4()), name))

    def _version(self, row: sqlite3.Row, label: str) -> FunctionVersion:
        uid = self._db.execute("SELECT uid FROM functions WHERE name = ?", (row["name"],)).fetchone()
        return FunctionVersion(
            name=row["name"],
            version=label,
            revision=row["revision"],
            config=self._config(row),
            code_sha256=row["code_sha256"],
            code_dir=self.code.path(row["code_sha256"]),
            created_at=row["created_at"],
            code_size=row["code_size"],
            function_uid=uid[0] if uid is not None else "",
            **self._derived_fields(self._config(row)),
        )

    def _derived_fields(self, config: FunctionConfig) -> dict:
        return self._derived(config) if self._derived is not None else {}

    def forget_derived(self) -> list[FunctionVersion]:
        """Drop every cached version, so the next resolve derives its fields again (a role
        was rotated); returns the versions that were cached, for the caller to retire."""
        with self._lock:
            cached = list(self._cache.values())
            self._cache.clear()
            return cached

    @staticmethod
    def _config(row: sqlite3.Row) -> FunctionConfig:
        return FunctionConfig.from_dict(json.loads(row["config"]))

    def _invalidate(self, name: str) -> None:
        for key in [k for k in self._cache if k[0] == name]:
            del self._cache[key]

    def _tx(self) -> Transaction:
        return Transaction(self._db)


def check_revision_id(name: str, current: Mapping[str, Any] | None, revision_id: str | None) -> None:
    """Lambda's optimistic concurrency: a write that names a RevisionId applies only to the
    state it names. `current` is the latest revision's row (None: no such function). Both
    stores call it under their lock or in their transaction, just before the write."""
    if not revision_id:
        return
    if current is None:
        raise PreconditionFailed(
            f"revision_id: function {name!r} does not exist; deploy without a revision_id "
            "to create it")
    if current["revision_id"] != revision_id:
        raise PreconditionFailed(
            f"revision_id: {revision_id!r} is not the current revision id of function "
            f"{name!r} (it changed since it was read); get the function again and retry "
            "with its revision_id")
