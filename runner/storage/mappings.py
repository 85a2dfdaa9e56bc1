"""The store of event source mappings, their checkpoints and their records' retry counts.

`MappingStore` is the protocol (a PostgreSQL implementation can follow;
tests/unit/storage/test_mapping_contract.py is the suite every implementation passes);
`SQLiteMappingStore` keeps it in `mappings.db` under the data directory, WAL with
synchronous=FULL, so every committed write survives kill -9.

What is durable and why:

* The mappings themselves, with State / StateTransitionReason / LastProcessingResult.
* Checkpoints: a source whose broker does not keep the consumer's position (the PostgreSQL
  change table) stores it here, written only after the records before it were processed.
* Retry counts per record: a record that failed is counted here before it is retried, so a
  poison record reaches its failure destination after MaximumRetryAttempts even if the runner
  is killed between retries (an in-memory count would start again at 0 and, with kill -9 in a
  loop, never end).

Counters of processed records and the iterator age are the poller's (in memory): they are
observations, and a durable write per batch would cost an fsync on the hot path.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Callable, Iterable, Protocol

from runner.errors import ResourceNotFound
from runner.storage.mapping_model import Mapping
from runner.storage.sqlite import Transaction, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS mappings (
    uuid      TEXT PRIMARY KEY,
    function  TEXT NOT NULL,
    doc       TEXT NOT NULL            -- JSON: Mapping.to_row()
);
CREATE INDEX IF NOT EXISTS mappings_function ON mappings (function);
CREATE TABLE IF NOT EXISTS checkpoints (
    uuid      TEXT NOT NULL,
    partition TEXT NOT NULL,
    position  TEXT NOT NULL,
    PRIMARY KEY (uuid, partition)
);
CREATE TABLE IF NOT EXISTS attempts (
    uuid      TEXT NOT NULL,
    record    TEXT NOT NULL,           -- the source's record id
    attempts  INTEGER NOT NULL,        -- failed invocations that held the record
    PRIMARY KEY (uuid, record)
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', 0);
"""


class MappingStore(Protocol):
    def create(self, mapping: Mapping) -> Mapping:
        """Store a new mapping (its uuid must be new: ResourceConflict-free because uuids are
        random; a duplicate raises ValueError, a bug)."""

    def get(self, uuid: str) -> Mapping:
        """The mapping; ResourceNotFound naming the UUID."""

    def list(self, function: str | None = None) -> list[Mapping]:
        """Every mapping (of `function`), oldest first."""

    def update(self, uuid: str, change: Callable[[Mapping], Mapping]) -> Mapping:
        """Replace the mapping with `change(current)`, under the store's lock, so two updates
        never overwrite each other's fields. ResourceNotFound."""

    def delete(self, uuid: str) -> Mapping:
        """Remove the mapping with its checkpoints and retry counts; returns it."""

    def version(self) -> int:
        """A number that grows with every create/update/delete: pollers compare it to notice
        changes without reading every mapping."""

    def checkpoint(self, uuid: str, partition: str) -> str | None:
        """The stored position of `partition`, or None if there is none yet."""

    def set_checkpoint(self, uuid: str, partition: str, position: str) -> None:
        """Store the position (durable when this returns)."""

    def attempts(self, uuid: str, records: Iterable[str]) -> dict[str, int]:
        """Failed invocations so far of each record (0 when not counted)."""

    def has_attempts(self, uuid: str) -> bool:
        """Whether any record of the mapping has a count (so a clean batch can skip the read)."""

    def add_attempt(self, uuid: str, records: Iterable[str]) -> dict[str, int]:
        """Count one more failed invocation of each record (durable); the new counts."""

    def clear_attempts(self, uuid: str, records: Iterable[str]) -> None:
        """Forget the counts of records that are done (processed or sent to the destination)."""

    def close(self) -> None:
        """Close the database."""


class SQLiteMappingStore:
    def __init__(self, data_dir: str) -> None:
        self._db = open_database(os.path.join(data_dir, "mappings.db"), SCHEMA)
        self._lock = threading.Lock()

    def _bump(self, db) -> None:
        db.execute("UPDATE meta SET v = v + 1 WHERE k = 'version'")

    def create(self, mapping: Mapping) -> Mapping:
        with self._lock, Transaction(self._db) as db:
            db.execute("INSERT INTO mappings VALUES (?, ?, ?)",
                       (mapping.uuid, mapping.function, json.dumps(mapping.to_row())))
            self._bump(db)
        return mapping

    def get(self, uuid: str) -> Mapping:
        with self._lock:
            row = self._db.execute("SELECT doc FROM mappings WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            raise ResourceNotFound(f"event source mapping {uuid} not found; `runner source list` "
                                   "shows the existing ones")
        return Mapping.from_row(json.loads(row["doc"]))

    def list(self, function: str | None = None) -> list[Mapping]:
        with self._lock:
            if function is None:
                rows = self._db.execute("SELECT doc FROM mappings").fetchall()
            else:
                rows = self._db.execute("SELECT doc FROM mappings WHERE function = ?", (function,)).fetchall()
        found = [Mapping.from_row(json.loads(r["doc"])) for r in rows]
        return sorted(found, key=lambda m: (m.created_at, m.uuid))

    def update(self, uuid: str, change: Callable[[Mapping], Mapping]) -> Mapping:
        with self._lock, Transaction(self._db) as db:
            row = db.execute("SELECT doc FROM mappings WHERE uuid = ?", (uuid,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"event source mapping {uuid} not found")
            new = change(Mapping.from_row(json.loads(row["doc"])))
            db.execute("UPDATE mappings SET function = ?, doc = ? WHERE uuid = ?",
                       (new.function, json.dumps(new.to_row()), uuid))
            self._bump(db)
        return new

    def delete(self, uuid: str) -> Mapping:
        mapping = self.get(uuid)
        with self._lock, Transaction(self._db) as db:
            db.execute("DELETE FROM mappings WHERE uuid = ?", (uuid,))
            db.execute("DELETE FROM checkpoints WHERE uuid = ?", (uuid,))
            db.execute("DELETE FROM attempts WHERE uuid = ?", (uuid,))
            self._bump(db)
        return mapping

    def version(self) -> int:
        with self._lock:
            return self._db.execute("SELECT v FROM meta WHERE k = 'version'").fetchone()[0]

    def checkpoint(self, uuid: str, partition: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT position FROM checkpoints WHERE uuid = ? AND partition = ?",
                                   (uuid, partition)).fetchone()
        return None if row is None else row[0]

    def set_checkpoint(self, uuid: str, partition: str, position: str) -> None:
        with self._lock, Transaction(self._db) as db:
            db.execute("INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (uuid, partition) "
                       "DO UPDATE SET position = excluded.position", (uuid, partition, position))

    def attempts(self, uuid: str, records: Iterable[str]) -> dict[str, int]:
        ids = list(records)
        out = dict.fromkeys(ids, 0)
        with self._lock:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(f"SELECT record, attempts FROM attempts WHERE uuid = ? "
                                            f"AND record IN ({marks})", (uuid, *chunk)):
                    out[row[0]] = row[1]
        return out

    def has_attempts(self, uuid: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM attempts WHERE uuid = ? LIMIT 1", (uuid,)).fetchone() is not None

    def add_attempt(self, uuid: str, records: Iterable[str]) -> dict[str, int]:
        ids = list(records)
        with self._lock, Transaction(self._db) as db:
            db.executemany("INSERT INTO attempts VALUES (?, ?, 1) ON CONFLICT (uuid, record) "
                           "DO UPDATE SET attempts = attempts + 1", [(uuid, r) for r in ids])
        return self.attempts(uuid, ids)

    def clear_attempts(self, uuid: str, records: Iterable[str]) -> None:
        ids = list(records)
        if not ids:
            return
        with self._lock, Transaction(self._db) as db:
            db.executemany("DELETE FROM attempts WHERE uuid = ? AND record = ?", [(uuid, r) for r in ids])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _chunks(ids: list[str], n: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(ids), n):
        yield ids[i:i + n]

