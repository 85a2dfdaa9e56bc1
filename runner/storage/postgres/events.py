"""The async event queue and dead letters on PostgreSQL, shared by every node of a cluster.

Same contract as storage/events.py (durable before the 202; an event leaves the queue only in
the transaction that records its outcome), plus leases, because several nodes' dispatchers
take events from one queue:

* `due()` claims events in one statement: `SELECT ... FOR UPDATE SKIP LOCKED` picks due rows
  no other node is claiming at that instant, and the UPDATE stamps them `leased_by` this node.
  Two nodes never get the same event while both are alive.
* A lease lasts as long as its node is alive (storage/postgres/nodes.py: heartbeat every 2 s,
  dead after 10 s), not a fixed time: an invocation may run up to 15 minutes, and a per-event
  timer would need renewing per event. The node's heartbeat is the visibility timeout: when a
  node dies (kill -9, a lost host), its leased events become claimable by any other node 10 s
  later, and run again (at-least-once, as on one node after a restart).
* `reschedule()` and `complete()` clear the lease with the outcome; a throttled event the
  dispatcher keeps back in memory stays leased by its node, which claims it again when due.
* `enqueue()` and `replay()` NOTIFY `runner_events`; `listen()` wakes this node's dispatcher
  with it, so an event accepted by one node is claimed by an idle one at once.
* Committed with PostgreSQL's default synchronous_commit=on: the COMMIT returns after the WAL
  is flushed on the database server, so a 202 is as durable as the database.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterable

import psycopg

from runner.storage.events import (
    DELIVERY_KEY_TTL_S,
    DeadLetter,
    Event,
    Outcome,
    chosen_dead_letters,
)
from runner.storage.postgres.connection import POOLS, Database
from runner.storage.postgres.nodes import LIVE_NODES
from runner.storage.postgres.nodes import SCHEMA as NODES_SCHEMA

SCHEMA = NODES_SCHEMA + """
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,
    function     TEXT NOT NULL,
    qualifier    TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    enqueued_at  DOUBLE PRECISION NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      DOUBLE PRECISION NOT NULL,
    last_error   TEXT,
    started_at   DOUBLE PRECISION,
    function_uid TEXT,
    trace_id     TEXT,                   -- the caller's X-Amzn-Trace-Id, for every attempt
    leased_by    TEXT                    -- the node running or holding it; NULL: free
);
ALTER TABLE events ADD COLUMN IF NOT EXISTS trace_id TEXT;
CREATE INDEX IF NOT EXISTS events_due ON events (next_at);
CREATE INDEX IF NOT EXISTS events_function ON events (function);
CREATE TABLE IF NOT EXISTS dead_letters (
    id           TEXT PRIMARY KEY,
    function     TEXT NOT NULL,
    qualifier    TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    record       TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_function ON dead_letters (function, created_at);
-- Delivery keys of push sources (storage/events.py: a repeated delivery is queued once).
CREATE TABLE IF NOT EXISTS delivered (
    key          TEXT PRIMARY KEY,
    at           DOUBLE PRECISION NOT NULL
);
"""

# Rows this node may claim: free, its own, or held by a node that is no longer live.
_CLAIMABLE = f"(leased_by IS NULL OR leased_by = %(me)s OR leased_by NOT IN ({LIVE_NODES}))"

_INSERT = ("INSERT INTO events (id, function, qualifier, payload, enqueued_at, attempts, next_at, "
           "function_uid, trace_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
           "ON CONFLICT (id) DO NOTHING")


class PostgresEventStore:
    def __init__(self, url: str, node_id: str) -> None:
        self.node_id = node_id
        self.db = Database(url, SCHEMA, size=POOLS["events"])

    def enqueue(self, event: Event, key: str | None = None) -> bool:
        """As storage/events.py: with a delivery `key` already accepted (by any node, within
        DELIVERY_KEY_TTL_S), nothing is queued and False is returned. The key's row and the
        event commit together; two nodes racing on one key: the primary key lets one win."""
        with self.db.transaction() as conn:
            if key is not None:
                conn.execute("DELETE FROM delivered WHERE at < %s",
                              (event.enqueued_at - DELIVERY_KEY_TTL_S,))
                won = conn.execute("INSERT INTO delivered VALUES (%s, %s) ON CONFLICT (key) "
                                   "DO NOTHING RETURNING key", (key, event.enqueued_at)).fetchone()
                if won is None:
                    return False
            _insert(conn, event)
            conn.execute("NOTIFY runner_events")  # delivered at commit: wakes idle pollers
        return True

    def due(self, now: float, exclude: Iterable[str], limit: int) -> list[Event]:
        if limit <= 0:
            return []
        rows = self.db.execute(
            "UPDATE events SET leased_by = %(me)s WHERE id IN ("
            f" SELECT id FROM events WHERE next_at <= %(now)s AND NOT (id = ANY(%(skip)s)) AND {_CLAIMABLE}"
            " ORDER BY next_at, enqueued_at LIMIT %(n)s FOR UPDATE SKIP LOCKED) RETURNING *",
            {"me": self.node_id, "now": now, "skip": list(exclude), "n": limit})
        rows.sort(key=lambda r: (r["next_at"], r["enqueued_at"]))
        return [_event(r) for r in rows]

    def next_due_at(self, exclude: Iterable[str]) -> float | None:
        row = self.db.one(
            f"SELECT MIN(next_at) AS t FROM events WHERE NOT (id = ANY(%(skip)s)) AND {_CLAIMABLE}",
            {"me": self.node_id, "skip": list(exclude)})
        return row["t"] if row else None

    def started(self, event_id: str, at: float) -> None:
        self.db.execute("UPDATE events SET started_at = %s WHERE id = %s", (at, event_id))

    def interrupted(self) -> list[tuple[Event, float]]:
        """Attempts cut short by the death of the node that ran them (this node's previous
        life, or any dead node); their leases are released with the notes."""
        rows = self.db.execute(
            "WITH cut AS (SELECT id, started_at AS was FROM events WHERE started_at IS NOT NULL "
            f"AND (leased_by IS NULL OR leased_by NOT IN ({LIVE_NODES})) FOR UPDATE SKIP LOCKED) "
            "UPDATE events SET started_at = NULL, leased_by = NULL FROM cut "
            "WHERE events.id = cut.id RETURNING events.*, cut.was")
        rows.sort(key=lambda r: r["was"] or 0)
        return [(_event(r), r["was"]) for r in rows]

    def reschedule(self, event_id: str, next_at: float, attempts: int,
                   last_error: dict[str, Any] | None) -> None:
        self.db.execute(
            "UPDATE events SET next_at = %s, attempts = %s, last_error = %s, started_at = NULL, "
            "leased_by = NULL WHERE id = %s",
            (next_at, attempts, json.dumps(last_error) if last_error else None, event_id))

    def complete(self, event_id: str, outcome: Outcome) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM events WHERE id = %s", (event_id,))
            if outcome.forward is not None:
                _insert(conn, outcome.forward)
            if outcome.dead_letter is not None:
                d = outcome.dead_letter
                conn.execute(
                    "INSERT INTO dead_letters (id, function, qualifier, payload, record, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                    "function = excluded.function, qualifier = excluded.qualifier, "
                    "payload = excluded.payload, record = excluded.record, "
                    "created_at = excluded.created_at",
                    (d.id, d.function, d.qualifier, d.payload, json.dumps(d.record), d.created_at))

    def discard_function(self, function: str) -> int:
        with self.db.transaction() as conn:
            n = conn.execute("DELETE FROM events WHERE function = %s", (function,)).rowcount
            conn.execute("DELETE FROM dead_letters WHERE function = %s", (function,))
        return n

    def pending(self, function: str | None = None) -> int:
        if function is None:
            return self.db.one("SELECT COUNT(*) AS n FROM events")["n"]
        return self.db.one("SELECT COUNT(*) AS n FROM events WHERE function = %s", (function,))["n"]

    def dead_letters(self, function: str) -> list[DeadLetter]:
        rows = self.db.execute("SELECT * FROM dead_letters WHERE function = %s "
                               "ORDER BY created_at, id", (function,))
        return [_dead_letter(r) for r in rows]

    def replay(self, function: str, ids: list[str] | None, now: float) -> list[str]:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT * FROM dead_letters WHERE function = %s "
                                "ORDER BY created_at, id FOR UPDATE", (function,)).fetchall()
            rows = chosen_dead_letters(rows, ids, function)
            for r in rows:
                conn.execute("DELETE FROM dead_letters WHERE id = %s", (r["id"],))
                _insert(conn, Event(r["id"], r["function"], r["qualifier"], bytes(r["payload"]),
                                    now, 0, now))
            if rows:
                conn.execute("NOTIFY runner_events")
        return [r["id"] for r in rows]

    def listen(self, wake: Callable[[], None]) -> None:
        """Call `wake` when any node queues an event (NOTIFY at its commit), so an idle
        dispatcher claims it at once rather than at its next poll. A dedicated connection:
        notifications arrive on the connection that LISTENs. Losing it only costs latency (the
        dispatcher polls every second), so it reconnects quietly."""
        self._stop_listening = threading.Event()

        def run() -> None:
            while not self._stop_listening.is_set():
                try:
                    with psycopg.connect(self.db.url, autocommit=True) as conn:
                        conn.execute("LISTEN runner_events")
                        while not self._stop_listening.is_set():
                            for _ in conn.notifies(timeout=1.0, stop_after=1):
                                wake()
                except Exception:
                    if self._stop_listening.wait(1.0):
                        return

        self._listener = threading.Thread(target=run, name="events-listen", daemon=True)
        self._listener.start()

    def close(self) -> None:
        stop = getattr(self, "_stop_listening", None)
        if stop is not None:
            stop.set()
            self._listener.join(timeout=3)
        self.db.close()


def _insert(conn, e: Event) -> None:
    conn.execute(_INSERT, (e.id, e.function, e.qualifier, e.payload, e.enqueued_at, e.attempts,
                           e.next_at, e.function_uid or None, e.trace_id or None))


def _event(r: dict) -> Event:
    return Event(r["id"], r["function"], r["qualifier"], bytes(r["payload"]), r["enqueued_at"],
                 r["attempts"], r["next_at"], r["function_uid"] or "", r["trace_id"] or "")


def _dead_letter(r: dict) -> DeadLetter:
    return DeadLetter(r["id"], r["function"], r["qualifier"], bytes(r["payload"]),
                      json.loads(r["record"]), r["created_at"])
