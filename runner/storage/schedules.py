"""Schedules (EventBridge Scheduler's model) and where each one stands, in `schedules.db`.

Each schedule row carries `next_slot`: the next fire time (unix seconds, UTC) that has not
been delivered nor dropped yet. The scheduler (runner/schedules/scheduler.py) moves it on only
after the slot's event is durably queued or the drop recorded; the queue refuses a slot's
second delivery by its key (storage/events.py), so a crash between the two steps neither
doubles nor loses a slot. `dropped` keeps the slots that were not delivered and why (missed
beyond their maximum event age, function gone), one row per slot.

The protocol is `ScheduleStore` (storage/base.py); this is its SQLite implementation, and
tests/unit/storage/test_schedule_store.py is the contract any other one must pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.sqlite import Transaction, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    name             TEXT PRIMARY KEY,
    doc              TEXT NOT NULL,     -- JSON: the Schedule's settings (every field below)
    enabled          INTEGER NOT NULL,
    next_slot        REAL,              -- NULL: nothing left to fire (ended, at() done)
    updated_at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped (
    name     TEXT NOT NULL,
    slot     REAL NOT NULL,
    reason   TEXT NOT NULL,
    at       REAL NOT NULL,
    PRIMARY KEY (name, slot)
);
"""


@dataclass(frozen=True)
class Schedule:
    name: str
    function: str
    expression: str
    qualifier: str = ""
    timezone: str = "UTC"
    input: Any = None  # JSON value, the event's `detail`
    flexible_window_min: int = 0
    max_retries: int = 185  # EventBridge Scheduler's defaults
    max_event_age_s: int = 86400
    dead_letter: str = ""
    start_at: float | None = None
    end_at: float | None = None
    enabled: bool = True
    created_at: float = 0.0
    next_slot: float | None = field(default=None, compare=False)

    def doc(self) -> str:
        d = dataclasses.asdict(self)
        for k in ("name", "enabled", "next_slot"):
            d.pop(k)
        return json.dumps(d, sort_keys=True)


@dataclass(frozen=True)
class DroppedSlot:
    name: str
    slot: float
    reason: str
    at: float


class SQLiteScheduleStore:
    """Thread-safe (one connection under a lock)."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self._db = open_database(os.path.join(data_dir, "schedules.db"), SCHEMA,
                                 busy_timeout_ms=5000)
        self._lock = threading.Lock()

    def create(self, s: Schedule, next_slot: float | None, now: float) -> Schedule:
        with self._lock, Transaction(self._db):
            if self._db.execute("SELECT 1 FROM schedules WHERE name = ?", (s.name,)).fetchone():
                raise ResourceConflict(f"name: schedule {s.name!r} exists; use `runner schedule "
                                       "update` or pick another name")
            self._db.execute("INSERT INTO schedules VALUES (?, ?, ?, ?, ?)",
                             (s.name, s.doc(), int(s.enabled), next_slot, now))
        return dataclasses.replace(s, next_slot=next_slot)

    def replace(self, s: Schedule, next_slot: float | None, now: float) -> Schedule:
        """Store new settings (and where the schedule now stands) for an existing schedule."""
        with self._lock, Transaction(self._db):
            n = self._db.execute(
                "UPDATE schedules SET doc = ?, enabled = ?, next_slot = ?, updated_at = ? "
                "WHERE name = ?", (s.doc(), int(s.enabled), next_slot, now, s.name)).rowcount
        if not n:
            raise _not_found(s.name)
        return dataclasses.replace(s, next_slot=next_slot)

    def get(self, name: str) -> Schedule:
        with self._lock:
            row = self._db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise _not_found(name)
        return _schedule(row)

    def list(self) -> list[Schedule]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_schedule(r) for r in rows]

    def due(self, now: float) -> list[Schedule]:
        """Enabled schedules whose next slot is at or before `now`, earliest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM schedules WHERE enabled = 1 AND next_slot IS NOT NULL "
                "AND next_slot <= ? ORDER BY next_slot", (now,)).fetchall()
        return [_schedule(r) for r in rows]

    def next_due_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_slot) FROM schedules "
                                   "WHERE enabled = 1").fetchone()
        return row[0]

    def advance(self, name: str, slot: float, next_slot: float | None,
                dropped: str | None = None, now: float = 0.0) -> bool:
        """Move `name` from `slot` to `next_slot` (recording the slot as dropped, with the
        reason, in the same transaction). False, changing nothing, if the schedule is no longer
        at `slot` (updated or deleted meanwhile)."""
        with self._lock, Transaction(self._db):
            n = self._db.execute("UPDATE schedules SET next_slot = ? WHERE name = ? AND "
                                 "next_slot = ?", (next_slot, name, slot)).rowcount
            if n and dropped:
                self._db.execute("INSERT OR IGNORE INTO dropped VALUES (?, ?, ?, ?)",
                                 (name, slot, dropped, now))
        return bool(n)

    def dropped(self, name: str) -> list[DroppedSlot]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM dropped WHERE name = ? ORDER BY slot",
                                    (name,)).fetchall()
        return [DroppedSlot(r["name"], r["slot"], r["reason"], r["at"]) for r in rows]

    def delete(self, name: str) -> Schedule:
        with self._lock, Transaction(self._db):
            row = self._db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise _not_found(name)
            self._db.execute("DELETE FROM schedules WHERE name = ?", (name,))
            self._db.execute("DELETE FROM dropped WHERE name = ?", (name,))
        return _schedule(row)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"schedule not found: {name}; see `runner schedule list`")


def _schedule(r: sqlite3.Row) -> Schedule:
    d = json.loads(r["doc"])
    known = {f.name for f in dataclasses.fields(Schedule)}
    return Schedule(name=r["name"], enabled=bool(r["enabled"]), next_slot=r["next_slot"],
                    **{k: v for k, v in d.items() if k in known})
