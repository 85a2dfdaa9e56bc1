"""Event source mappings on PostgreSQL: the MappingStore contract (storage/mappings.py),
shared by the nodes of a cluster. Which node polls a mapping is decided by a singleton lease
per mapping (`mapping:<uuid>`, storage/postgres/nodes.py), taken in the sources' reconcile
loop (runner/sources/manager.py): when the holder dies its lease expires and another node
resumes from the positions stored here (or kept by the broker, as Redis consumer groups do).
"""

from __future__ import annotations

import json
from typing import Callable, Iterable

from runner.errors import ResourceNotFound
from runner.storage.mapping_model import Mapping
from runner.storage.postgres.connection import POOLS, Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS mappings (
    uuid      TEXT PRIMARY KEY,
    function  TEXT NOT NULL,
    doc       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mappings_function ON mappings (function);
CREATE TABLE IF NOT EXISTS mapping_checkpoints (
    uuid      TEXT NOT NULL,
    partition TEXT NOT NULL,
    position  TEXT NOT NULL,
    PRIMARY KEY (uuid, partition)
);
CREATE TABLE IF NOT EXISTS mapping_attempts (
    uuid      TEXT NOT NULL,
    record    TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    PRIMARY KEY (uuid, record)
);
CREATE TABLE IF NOT EXISTS mappings_generation (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    n         BIGINT NOT NULL
);
INSERT INTO mappings_generation VALUES (1, 0) ON CONFLICT DO NOTHING;
"""

_BUMP = "UPDATE mappings_generation SET n = n + 1 WHERE id = 1"


class PostgresMappingStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, size=POOLS["mappings"])

    def create(self, mapping: Mapping) -> Mapping:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO mappings VALUES (%s, %s, %s)",
                         (mapping.uuid, mapping.function, json.dumps(mapping.to_row())))
            conn.execute(_BUMP)
        return mapping

    def get(self, uuid: str) -> Mapping:
        row = self.db.one("SELECT doc FROM mappings WHERE uuid = %s", (uuid,))
        if row is None:
            raise ResourceNotFound(f"event source mapping {uuid} not found; `runner source list` "
                                   "shows the existing ones")
        return Mapping.from_row(json.loads(row["doc"]))

    def list(self, function: str | None = None) -> list[Mapping]:
        if function is None:
            rows = self.db.execute("SELECT doc FROM mappings")
        else:
            rows = self.db.execute("SELECT doc FROM mappings WHERE function = %s", (function,))
        found = [Mapping.from_row(json.loads(r["doc"])) for r in rows]
        return sorted(found, key=lambda m: (m.created_at, m.uuid))

    def update(self, uuid: str, change: Callable[[Mapping], Mapping]) -> Mapping:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT doc FROM mappings WHERE uuid = %s FOR UPDATE",
                               (uuid,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"event source mapping {uuid} not found")
            new = change(Mapping.from_row(json.loads(row["doc"])))
            conn.execute("UPDATE mappings SET function = %s, doc = %s WHERE uuid = %s",
                         (new.function, json.dumps(new.to_row()), uuid))
            conn.execute(_BUMP)
        return new

    def delete(self, uuid: str) -> Mapping:
        mapping = self.get(uuid)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM mappings WHERE uuid = %s", (uuid,))
            conn.execute("DELETE FROM mapping_checkpoints WHERE uuid = %s", (uuid,))
            conn.execute("DELETE FROM mapping_attempts WHERE uuid = %s", (uuid,))
            conn.execute(_BUMP)
        return mapping

    def version(self) -> int:
        return self.db.one("SELECT n FROM mappings_generation WHERE id = 1")["n"]

    def checkpoint(self, uuid: str, partition: str) -> str | None:
        row = self.db.one("SELECT position FROM mapping_checkpoints WHERE uuid = %s AND "
                          "partition = %s", (uuid, partition))
        return None if row is None else row["position"]

    def set_checkpoint(self, uuid: str, partition: str, position: str) -> None:
        self.db.execute("INSERT INTO mapping_checkpoints VALUES (%s, %s, %s) ON CONFLICT "
                        "(uuid, partition) DO UPDATE SET position = excluded.position",
                        (uuid, partition, position))

    def attempts(self, uuid: str, records: Iterable[str]) -> dict[str, int]:
        ids = list(records)
        out = dict.fromkeys(ids, 0)
        if ids:
            for r in self.db.execute("SELECT record, attempts FROM mapping_attempts WHERE "
                                     "uuid = %s AND record = ANY(%s)", (uuid, ids)):
                out[r["record"]] = r["attempts"]
        return out

    def has_attempts(self, uuid: str) -> bool:
        return self.db.one("SELECT 1 AS x FROM mapping_attempts WHERE uuid = %s LIMIT 1",
                           (uuid,)) is not None

    def add_attempt(self, uuid: str, records: Iterable[str]) -> dict[str, int]:
        ids = list(records)
        with self.db.transaction() as conn:
            for r in ids:
                conn.execute("INSERT INTO mapping_attempts VALUES (%s, %s, 1) ON CONFLICT "
                             "(uuid, record) DO UPDATE SET attempts = mapping_attempts.attempts + 1",
                             (uuid, r))
        return self.attempts(uuid, ids)

    def clear_attempts(self, uuid: str, records: Iterable[str]) -> None:
        ids = list(records)
        if ids:
            self.db.execute("DELETE FROM mapping_attempts WHERE uuid = %s AND record = ANY(%s)",
                            (uuid, ids))

    def close(self) -> None:
        self.db.close()
