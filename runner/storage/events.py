"""The durable store behind asynchronous (Event) invocation: a queue of accepted events and a
dead-letter store of events that could not be processed.

Durability contract: `enqueue()` returns only after the event's row is committed to
`events.db` in WAL mode with synchronous=FULL, i.e. after the WAL was fsync'ed. The caller
answers "202 Accepted" only after that, so a kill -9 (or power loss) at any later moment
cannot lose an accepted event.

At-least-once: an event leaves the queue only in the same transaction that records its
outcome (`complete()`: delete it and, atomically, queue its destination record or write it
to the dead-letter store). A crash before that commit leaves the event queued; after a
restart it runs again. Which events are running is kept in memory by the dispatcher; the
store only notes when an attempt started (`started()`), so that after a crash the attempts the
server was in the middle of can be named in the function's log (`interrupted()`).

This is a separate database file from registry.db: event traffic (one fsync per accepted
event) must not queue behind the registry's lock or lengthen its WAL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from runner.errors import ResourceNotFound
from runner.storage.sqlite import Transaction, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,      -- the request id, kept across retries
    function     TEXT NOT NULL,
    qualifier    TEXT NOT NULL,         -- '' means $LATEST
    payload      BLOB NOT NULL,
    enqueued_at  REAL NOT NULL,         -- unix seconds; the event's age counts from here
    attempts     INTEGER NOT NULL DEFAULT 0,  -- invocations that ran and failed
    next_at      REAL NOT NULL,         -- not before this time (backoff, throttling)
    last_error   TEXT,                  -- JSON: the last function error document
    started_at   REAL,                  -- an attempt began then and has no recorded outcome yet
    function_uid TEXT,                  -- the identity of the function it was accepted for
    trace_id     TEXT                   -- the caller's X-Amzn-Trace-Id, for every attempt
);
CREATE INDEX IF NOT EXISTS events_due ON events (next_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id           TEXT PRIMARY KEY,      -- the request id of the failed event
    function     TEXT NOT NULL,
    qualifier    TEXT NOT NULL,
    payload      BLOB NOT NULL,         -- the original event, for replay
    record       TEXT NOT NULL,         -- JSON: the destination record (Lambda's shape)
    created_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_function ON dead_letters (function, created_at);
-- Push sources (schedules, topics, object-store notifications): the delivery keys of events
-- already accepted, so that a source that repeats a delivery after a crash (a schedule slot,
-- a notification's sequencer) queues it once. Written in the enqueue's transaction.
CREATE TABLE IF NOT EXISTS delivered (
    key          TEXT PRIMARY KEY,
    at           REAL NOT NULL
);
"""
# Delivery keys are kept this long: far longer than any source retries a delivery for.
DELIVERY_KEY_TTL_S = 14 * 86400


@dataclass(frozen=True)
class Event:
    id: str
    function: str
    qualifier: str
    payload: bytes
    enqueued_at: float
    attempts: int
    next_at: float
    # FunctionVersion.function_uid of the function it was accepted for; "" for events that
    # name a function only (destination records, replays): those run on whatever has the name.
    function_uid: str = ""
    trace_id: str = ""  # the caller's trace (invocation/trace.py); "" = none


@dataclass(frozen=True)
class DeadLetter:
    id: str
    function: str
    qualifier: str
    payload: bytes
    record: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Outcome:
    """What to commit when an event is finished: where its destination record goes (an
    event for another function, the dead-letter store, or nowhere)."""

    forward: Event | None = None
    dead_letter: DeadLetter | None = None


class EventStore:
    """The queue and the dead-letter store. Thread-safe (one connection under a lock)."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "events.db")
        # synchronous=FULL (open_database): a committed enqueue survives power loss.
        self._db = open_database(self.path, SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(events)")}
        for column, kind in (("started_at", "REAL"), ("function_uid", "TEXT"),
                             ("trace_id", "TEXT")):
            if column not in columns:  # a data directory from before the column
                self._db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the queue

    def enqueue(self, event: Event, key: str | None = None) -> bool:
        """Durably queue `event`; returns after the commit reached the disk. With a delivery
        `key`, an event whose key was accepted before (within DELIVERY_KEY_TTL_S) is not
        queued again and False is returned."""
        with self._lock, Transaction(self._db):
            if key is not None:
                if self._db.execute("SELECT 1 FROM delivered WHERE key = ?", (key,)).fetchone():
                    return False
                self._db.execute("DELETE FROM delivered WHERE at < ?",
                                 (event.enqueued_at - DELIVERY_KEY_TTL_S,))
                self._db.execute("INSERT INTO delivered VALUES (?, ?)", (key, event.enqueued_at))
            self._insert_event(event)
        return True

    def due(self, now: float, exclude: Iterable[str], limit: int) -> list[Event]:
        """Up to `limit` events whose time has come, oldest first, skipping `exclude` (those
        the dispatcher is already running)."""
        skip = set(exclude)
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM events WHERE next_at <= ? ORDER BY next_at, enqueued_at LIMIT ?",
                (now, limit + len(skip)),
            ).fetchall()
        return [_event(r) for r in rows if r["id"] not in skip][:limit]

    def next_due_at(self, exclude: Iterable[str]) -> float | None:
        """When the earliest event not in `exclude` becomes due (None: queue empty)."""
        skip = set(exclude)
        with self._lock:
            for row in self._db.execute("SELECT id, next_at FROM events ORDER BY next_at"):
                if row["id"] not in skip:
                    return row["next_at"]
        return None

    def started(self, event_id: str, at: float) -> None:
        """Note that an attempt of the event began at `at` (cleared with its outcome). One
        commit per attempt: what lets a restart say which attempts a crash cut short."""
        with self._lock, Transaction(self._db):
            self._db.execute("UPDATE events SET started_at = ? WHERE id = ?", (at, event_id))

    def interrupted(self) -> list[tuple[Event, float]]:
        """The events whose last attempt started and never had its outcome recorded (the
        server died meanwhile), with when it started; the notes are cleared. Call before the
        dispatcher runs anything."""
        with self._lock, Transaction(self._db):
            rows = self._db.execute(
                "SELECT * FROM events WHERE started_at IS NOT NULL ORDER BY started_at").fetchall()
            self._db.execute("UPDATE events SET started_at = NULL WHERE started_at IS NOT NULL")
        return [(_event(r), r["started_at"]) for r in rows]

    def reschedule(self, event_id: str, next_at: float, attempts: int,
                   last_error: dict[str, Any] | None) -> None:
        """Keep the event queued for another attempt at `next_at`."""
        with self._lock, Transaction(self._db):
            self._db.execute(
                "UPDATE events SET next_at = ?, attempts = ?, last_error = ?, started_at = NULL "
                "WHERE id = ?",
                (next_at, attempts, json.dumps(last_error) if last_error else None, event_id),
            )

    def complete(self, event_id: str, outcome: Outcome) -> None:
        """Remove the event and record its outcome in ONE transaction (see the module doc)."""
        with self._lock, Transaction(self._db):
            self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            if outcome.forward is not None:
                self._insert_event(outcome.forward)
            if outcome.dead_letter is not None:
                d = outcome.dead_letter
                self._db.execute(
                    "INSERT OR REPLACE INTO dead_letters "
                    "(id, function, qualifier, payload, record, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (d.id, d.function, d.qualifier, d.payload, json.dumps(d.record), d.created_at),
                )

    def discard_function(self, function: str) -> int:
        """Drop the queued events and dead letters of `function` (it was deleted: Lambda
        discards a deleted function's queue); returns how many events went."""
        with self._lock, Transaction(self._db):
            n = self._db.execute("DELETE FROM events WHERE function = ?", (function,)).rowcount
            self._db.execute("DELETE FROM dead_letters WHERE function = ?", (function,))
        return n

    def pending(self, function: str | None = None) -> int:
        with self._lock:
            if function is None:
                return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            return self._db.execute(
                "SELECT COUNT(*) FROM events WHERE function = ?", (function,)).fetchone()[0]

    # ------------------------------------------------------------------ dead letters

    def dead_letters(self, function: str) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM dead_letters WHERE function = ? ORDER BY created_at, id", (function,)
            ).fetchall()
        return [_dead_letter(r) for r in rows]

    def add_dead_letter(self, d: DeadLetter) -> None:
        """Write a dead letter for an event that was never queued (a push source's dropped
        delivery, e.g. a schedule slot). Idempotent by id: a repeat after a crash replaces it."""
        with self._lock, Transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO dead_letters "
                "(id, function, qualifier, payload, record, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (d.id, d.function, d.qualifier, d.payload, json.dumps(d.record), d.created_at),
            )

    def replay(self, function: str, ids: list[str] | None, now: float) -> list[str]:
        """Move dead letters of `function` (all, or those in `ids`) back into the queue as fresh
        events (new age, zero attempts, same request id). Atomic: all or nothing."""
        with self._lock, Transaction(self._db):
            rows = self._db.execute(
                "SELECT * FROM dead_letters WHERE function = ? ORDER BY created_at, id", (function,)
            ).fetchall()
            rows = chosen_dead_letters(rows, ids, function)
            for r in rows:
                self._db.execute("DELETE FROM dead_letters WHERE id = ?", (r["id"],))
                self._insert_event(Event(r["id"], r["function"], r["qualifier"], r["payload"],
                                         now, 0, now))
        return [r["id"] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _insert_event(self, e: Event) -> None:
        # OR IGNORE: ids are request ids and unique per event; a replay of a dead letter whose
        # id is queued again already must not abort the whole transaction.
        self._db.execute(
            "INSERT OR IGNORE INTO events (id, function, qualifier, payload, enqueued_at, attempts, "
            "next_at, function_uid, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (e.id, e.function, e.qualifier, e.payload, e.enqueued_at, e.attempts, e.next_at,
             e.function_uid or None, e.trace_id or None),
        )


def _event(r: sqlite3.Row) -> Event:
    return Event(r["id"], r["function"], r["qualifier"], bytes(r["payload"]), r["enqueued_at"],
                 r["attempts"], r["next_at"], r["function_uid"] or "", r["trace_id"] or "")


def _dead_letter(r: sqlite3.Row) -> DeadLetter:
    return DeadLetter(r["id"], r["function"], r["qualifier"], bytes(r["payload"]),
                      json.loads(r["record"]), r["created_at"])


def chosen_dead_letters(rows: list, ids: list[str] | None, function: str) -> list:
    """The dead-letter rows a replay names: all of `rows` when `ids` is empty, else those
    with an id in `ids`, refusing the whole replay if one id is not a dead letter of
    `function` (a replay is all or nothing). Shared by the SQLite and PostgreSQL queues."""
    if not ids:
        return rows
    known = {r["id"] for r in rows}
    missing = [i for i in ids if i not in known]
    if missing:
        raise ResourceNotFound(
            f"id: no dead letter {missing[0]!r} for function {function!r}; "
            f"see `runner dlq list {function}`")
    wanted = set(ids)
    return [r for r in rows if r["id"] in wanted]
