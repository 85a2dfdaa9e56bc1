"""The event store's note of started attempts (storage/events.py): what a restart reads to name
the attempts a crash cut short."""

from __future__ import annotations

import sqlite3

from runner.storage.events import Event, EventStore, Outcome


def _event(eid: str) -> Event:
    return Event(eid, "f", "", b"{}", 1.0, 0, 1.0)


def test_an_attempt_without_an_outcome_is_interrupted_once(tmp_path):
    store = EventStore(str(tmp_path))
    for eid in ("done", "retried", "cut"):
        store.enqueue(_event(eid))
    for eid in ("done", "retried", "cut"):
        store.started(eid, 100.0)
    store.complete("done", Outcome())
    store.reschedule("retried", 200.0, 1, {"errorType": "E"})
    store.close()
    reopened = EventStore(str(tmp_path))  # as after a crash: only what was committed
    try:
        cut = reopened.interrupted()
        assert [(e.id, at) for e, at in cut] == [("cut", 100.0)]
        assert reopened.interrupted() == []  # named once
        assert reopened.pending() == 2  # nothing was taken out of the queue
    finally:
        reopened.close()


def test_a_store_from_before_the_column_gains_it(tmp_path):
    db = sqlite3.connect(str(tmp_path / "events.db"))
    db.execute("CREATE TABLE events (id TEXT PRIMARY KEY, function TEXT NOT NULL, qualifier TEXT "
               "NOT NULL, payload BLOB NOT NULL, enqueued_at REAL NOT NULL, attempts INTEGER NOT "
               "NULL DEFAULT 0, next_at REAL NOT NULL, last_error TEXT)")
    db.execute("INSERT INTO events VALUES ('old', 'f', '', x'7b7d', 1.0, 0, 1.0, NULL)")
    db.commit()
    db.close()
    store = EventStore(str(tmp_path))
    try:
        assert store.interrupted() == [] and store.pending() == 1
        store.started("old", 5.0)
        assert [e.id for e, _ in store.interrupted()] == ["old"]
    finally:
        store.close()
