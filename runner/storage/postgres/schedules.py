"""Schedules on PostgreSQL: the ScheduleStore contract (storage/schedules.py), shared by the
nodes of a cluster.

Every node runs its scheduler over this one table, and no lease decides which: a slot's event
is queued with the delivery key "schedule:NAME:CREATED:SLOT", which the shared queue accepts
once (storage/postgres/events.py, `delivered`), and `advance()` moves a schedule on only from
the slot it names (compare-and-set). So two nodes ticking the same slot queue it once and move
it once, and when a node dies the others keep firing every schedule -- nothing to take over.
"""

from __future__ import annotations

import dataclasses
import json

from runner.errors import ResourceConflict
from runner.storage.postgres.connection import POOLS, Database
from runner.storage.schedules import DroppedSlot, Schedule, _not_found

SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    name             TEXT PRIMARY KEY,
    doc              TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    next_slot        DOUBLE PRECISION,
    updated_at       DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_slot) WHERE enabled;
CREATE TABLE IF NOT EXISTS schedules_dropped (
    name     TEXT NOT NULL,
    slot     DOUBLE PRECISION NOT NULL,
    reason   TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, slot)
);
"""


class PostgresScheduleStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, size=POOLS["schedules"])

    def create(self, s: Schedule, next_slot: float | None, now: float) -> Schedule:
        rows = self.db.execute(
            "INSERT INTO schedules VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING "
            "RETURNING name", (s.name, s.doc(), s.enabled, next_slot, now))
        if not rows:
            raise ResourceConflict(f"name: schedule {s.name!r} exists; use `runner schedule "
                                   "update` or pick another name")
        return dataclasses.replace(s, next_slot=next_slot)

    def replace(self, s: Schedule, next_slot: float | None, now: float) -> Schedule:
        rows = self.db.execute(
            "UPDATE schedules SET doc = %s, enabled = %s, next_slot = %s, updated_at = %s "
            "WHERE name = %s RETURNING name", (s.doc(), s.enabled, next_slot, now, s.name))
        if not rows:
            raise _not_found(s.name)
        return dataclasses.replace(s, next_slot=next_slot)

    def get(self, name: str) -> Schedule:
        row = self.db.one("SELECT * FROM schedules WHERE name = %s", (name,))
        if row is None:
            raise _not_found(name)
        return _schedule(row)

    def list(self) -> list[Schedule]:
        return [_schedule(r) for r in self.db.execute(
            'SELECT * FROM schedules ORDER BY name COLLATE "C"')]

    def due(self, now: float) -> list[Schedule]:
        return [_schedule(r) for r in self.db.execute(
            "SELECT * FROM schedules WHERE enabled AND next_slot IS NOT NULL AND next_slot <= %s "
            "ORDER BY next_slot", (now,))]

    def next_due_at(self) -> float | None:
        row = self.db.one("SELECT MIN(next_slot) AS t FROM schedules WHERE enabled")
        return row["t"] if row else None

    def advance(self, name: str, slot: float, next_slot: float | None,
                dropped: str | None = None, now: float = 0.0) -> bool:
        with self.db.transaction() as conn:
            moved = conn.execute("UPDATE schedules SET next_slot = %s WHERE name = %s AND "
                                 "next_slot = %s RETURNING name", (next_slot, name, slot)).fetchone()
            if moved and dropped:
                conn.execute("INSERT INTO schedules_dropped VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT DO NOTHING", (name, slot, dropped, now))
        return moved is not None

    def dropped(self, name: str) -> list[DroppedSlot]:
        return [DroppedSlot(r["name"], r["slot"], r["reason"], r["at"]) for r in self.db.execute(
            "SELECT * FROM schedules_dropped WHERE name = %s ORDER BY slot", (name,))]

    def delete(self, name: str) -> Schedule:
        with self.db.transaction() as conn:
            row = conn.execute("DELETE FROM schedules WHERE name = %s RETURNING *",
                               (name,)).fetchone()
            if row is None:
                raise _not_found(name)
            conn.execute("DELETE FROM schedules_dropped WHERE name = %s", (name,))
        return _schedule(row)

    def close(self) -> None:
        self.db.close()


def _schedule(r: dict) -> Schedule:
    d = json.loads(r["doc"])
    known = {f.name for f in dataclasses.fields(Schedule)}
    return Schedule(name=r["name"], enabled=bool(r["enabled"]), next_slot=r["next_slot"],
                    **{k: v for k, v in d.items() if k in known})
