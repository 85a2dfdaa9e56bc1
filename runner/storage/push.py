"""Push-event associations in `push.db`: object-store triggers (bucket -> function, with S3's
event-type and key filters) and topics with their subscriptions (topic -> function, with an
SNS filter policy).

The protocol is `PushStore` (storage/base.py); this is its SQLite implementation, and
tests/unit/storage/test_push_store.py is the contract. Rules about what may be stored (S3's
overlapping-filter refusal, filter-policy syntax) are checked above, in runner/triggers and
runner/topics, under `adding()` so that check-and-insert is one step per store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.sqlite import Transaction, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS triggers (
    name        TEXT PRIMARY KEY,
    function    TEXT NOT NULL,
    qualifier   TEXT NOT NULL DEFAULT '',
    bucket      TEXT NOT NULL,
    events      TEXT NOT NULL,          -- JSON list, e.g. ["s3:ObjectCreated:*"]
    prefix      TEXT NOT NULL DEFAULT '',
    suffix      TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS triggers_bucket ON triggers (bucket);
CREATE TABLE IF NOT EXISTS topics (
    name        TEXT PRIMARY KEY,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id            TEXT PRIMARY KEY,
    topic         TEXT NOT NULL REFERENCES topics (name),
    function      TEXT NOT NULL,
    qualifier     TEXT NOT NULL DEFAULT '',
    filter_policy TEXT,                 -- JSON object or NULL
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic);
"""


@dataclass(frozen=True)
class Trigger:
    name: str
    function: str
    bucket: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""
    qualifier: str = ""
    created_at: float = 0.0


@dataclass(frozen=True)
class Subscription:
    id: str
    topic: str
    function: str
    qualifier: str = ""
    filter_policy: dict[str, Any] | None = field(default=None, hash=False)
    created_at: float = 0.0


class SQLitePushStore:
    """Thread-safe (one connection under a lock)."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self._db = open_database(os.path.join(data_dir, "push.db"), SCHEMA, busy_timeout_ms=5000)
        self._lock = threading.RLock()

    @contextmanager
    def adding(self) -> Iterator[None]:
        """Hold the store for a check-then-add (e.g. the overlap check before add_trigger)."""
        with self._lock:
            yield

    # ------------------------------------------------------------------ triggers

    def add_trigger(self, t: Trigger) -> None:
        with self._lock, Transaction(self._db):
            if self._db.execute("SELECT 1 FROM triggers WHERE name = ?", (t.name,)).fetchone():
                raise ResourceConflict(f"name: trigger {t.name!r} exists; delete it first or "
                                       "pick another name")
            self._db.execute("INSERT INTO triggers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (t.name, t.function, t.qualifier, t.bucket, json.dumps(list(t.events)),
                              t.prefix, t.suffix, t.created_at))

    def triggers(self, bucket: str | None = None) -> list[Trigger]:
        with self._lock:
            if bucket is None:
                rows = self._db.execute("SELECT * FROM triggers ORDER BY name").fetchall()
            else:
                rows = self._db.execute("SELECT * FROM triggers WHERE bucket = ? ORDER BY name",
                                        (bucket,)).fetchall()
        return [_trigger(r) for r in rows]

    def get_trigger(self, name: str) -> Trigger:
        with self._lock:
            row = self._db.execute("SELECT * FROM triggers WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ResourceNotFound(f"trigger not found: {name}; see `runner trigger list`")
        return _trigger(row)

    def delete_trigger(self, name: str) -> Trigger:
        with self._lock, Transaction(self._db):
            t = self.get_trigger(name)
            self._db.execute("DELETE FROM triggers WHERE name = ?", (name,))
        return t

    # ------------------------------------------------------------------ topics

    def create_topic(self, name: str, now: float) -> bool:
        with self._lock, Transaction(self._db):
            n = self._db.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (name, now)).rowcount
        return bool(n)

    def topics(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM topics ORDER BY name")]

    def delete_topic(self, name: str) -> None:
        with self._lock, Transaction(self._db):
            self._topic_exists(name)
            self._db.execute("DELETE FROM subscriptions WHERE topic = ?", (name,))
            self._db.execute("DELETE FROM topics WHERE name = ?", (name,))

    def subscribe(self, sub: Subscription) -> Subscription:
        with self._lock, Transaction(self._db):
            self._topic_exists(sub.topic)
            # No unique index: push.db files written before subscribing was idempotent may
            # hold duplicates, and one node's lock already makes check-then-insert one step.
            row = self._db.execute(
                "SELECT * FROM subscriptions WHERE topic = ? AND function = ? AND qualifier = ? "
                "ORDER BY created_at, id LIMIT 1", (sub.topic, sub.function, sub.qualifier)
            ).fetchone()
            if row is not None:
                return existing_subscription(_subscription(row), sub)
            self._db.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?)",
                (sub.id, sub.topic, sub.function, sub.qualifier,
                 json.dumps(sub.filter_policy) if sub.filter_policy is not None else None,
                 sub.created_at))
        return sub

    def subscriptions(self, topic: str) -> list[Subscription]:
        with self._lock:
            self._topic_exists(topic)
            rows = self._db.execute("SELECT * FROM subscriptions WHERE topic = ? "
                                    "ORDER BY created_at, id", (topic,)).fetchall()
        return [_subscription(r) for r in rows]

    def unsubscribe(self, subscription_id: str) -> Subscription:
        with self._lock, Transaction(self._db):
            row = self._db.execute("SELECT * FROM subscriptions WHERE id = ?",
                                   (subscription_id,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"subscription not found: {subscription_id}; see "
                                       "`runner topic get TOPIC`")
            self._db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
        return _subscription(row)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _topic_exists(self, name: str) -> None:
        if not self._db.execute("SELECT 1 FROM topics WHERE name = ?", (name,)).fetchone():
            raise ResourceNotFound(f"topic not found: {name}; create it with `runner topic "
                                   "create`")


def existing_subscription(existing: Subscription, asked: Subscription) -> Subscription:
    """Subscribing a function to a topic it is already subscribed to (same qualifier) is
    idempotent, as SNS's Subscribe of an endpoint: the existing subscription, if the filter
    policy is the same; a different one is refused (SNS: "Subscription already exists with
    different attributes"), since two would deliver each message twice."""
    if existing.filter_policy != asked.filter_policy:
        raise ResourceConflict(
            f"policy: {asked.function!r} is already subscribed to topic {asked.topic!r} "
            f"(subscription {existing.id}) with another filter policy; unsubscribe it first "
            "or subscribe another qualifier")
    return existing


def _trigger(r: sqlite3.Row) -> Trigger:
    return Trigger(r["name"], r["function"], r["bucket"], tuple(json.loads(r["events"])),
                   r["prefix"], r["suffix"], r["qualifier"], r["created_at"])


def _subscription(r: sqlite3.Row) -> Subscription:
    fp = r["filter_policy"]
    return Subscription(r["id"], r["topic"], r["function"], r["qualifier"],
                        json.loads(fp) if fp else None, r["created_at"])
