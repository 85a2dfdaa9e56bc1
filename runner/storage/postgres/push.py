"""Object-store triggers, topics and subscriptions on PostgreSQL: the PushStore contract
(storage/base.py, SQLite in storage/push.py), shared by the nodes of a cluster.

Why shared: a trigger or subscription created through one node must fire for an object
event or a publish that reaches any node; with a store per node a push to node B would find
no trigger added through node A (decision 078).

No duplicates when two nodes create the same thing at once:
* a trigger's name and a topic's name are primary keys (INSERT ... ON CONFLICT DO NOTHING
  decides which insert won); a subscription is unique per (topic, function, qualifier), so
  two nodes subscribing the same function get one subscription and both return it;
* a subscription's topic is a foreign key with ON DELETE CASCADE, so a subscribe racing a
  delete_topic either lands before it (and is deleted with it) or fails as ResourceNotFound;
* `adding()` (the trigger overlap check, then the insert) holds a session-level advisory
  lock on a connection of its own for the block: the checks of two nodes adding overlapping
  triggers to one bucket take turns, so the second sees the first's trigger and is refused.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.postgres.connection import POOLS, Database
from runner.storage.push import Subscription, Trigger, existing_subscription

SCHEMA = """
CREATE TABLE IF NOT EXISTS push_triggers (
    name        TEXT PRIMARY KEY,
    function    TEXT NOT NULL,
    qualifier   TEXT NOT NULL DEFAULT '',
    bucket      TEXT NOT NULL,
    events      TEXT NOT NULL,
    prefix      TEXT NOT NULL DEFAULT '',
    suffix      TEXT NOT NULL DEFAULT '',
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS push_triggers_bucket ON push_triggers (bucket);
CREATE TABLE IF NOT EXISTS push_topics (
    name        TEXT PRIMARY KEY,
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id            TEXT PRIMARY KEY,
    topic         TEXT NOT NULL REFERENCES push_topics (name) ON DELETE CASCADE,
    function      TEXT NOT NULL,
    qualifier     TEXT NOT NULL DEFAULT '',
    filter_policy TEXT,
    created_at    DOUBLE PRECISION NOT NULL,
    UNIQUE (topic, function, qualifier)
);
"""

# The advisory lock `adding()` holds (a session lock: the block spans several statements on
# other connections of the pool).
_ADDING_LOCK = "hashtext('push:adding')"


class PostgresPushStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, size=POOLS["push"])
        # One thread per node inside adding(): the block holds one of the pool's connections
        # and its statements need another, so two threads of one node holding one each
        # would wait for each other.
        self._adding = threading.RLock()
        self._depth = 0

    @contextmanager
    def adding(self) -> Iterator[None]:
        with self._adding:
            if self._depth:  # re-entered by the holder: the advisory lock is already held
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self.db.connection() as conn:
                conn.execute(f"SELECT pg_advisory_lock({_ADDING_LOCK})")
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    if not conn.broken:  # a broken session has released the lock with itself
                        conn.execute(f"SELECT pg_advisory_unlock({_ADDING_LOCK})")

    # ------------------------------------------------------------------ triggers

    def add_trigger(self, t: Trigger) -> None:
        rows = self.db.execute(
            "INSERT INTO push_triggers VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            (t.name, t.function, t.qualifier, t.bucket, json.dumps(list(t.events)), t.prefix,
             t.suffix, t.created_at))
        if not rows:
            raise ResourceConflict(f"name: trigger {t.name!r} exists; delete it first or "
                                   "pick another name")

    def triggers(self, bucket: str | None = None) -> list[Trigger]:
        if bucket is None:
            rows = self.db.execute('SELECT * FROM push_triggers ORDER BY name COLLATE "C"')
        else:
            rows = self.db.execute('SELECT * FROM push_triggers WHERE bucket = %s '
                                   'ORDER BY name COLLATE "C"', (bucket,))
        return [_trigger(r) for r in rows]

    def get_trigger(self, name: str) -> Trigger:
        row = self.db.one("SELECT * FROM push_triggers WHERE name = %s", (name,))
        if row is None:
            raise _trigger_not_found(name)
        return _trigger(row)

    def delete_trigger(self, name: str) -> Trigger:
        row = self.db.one("DELETE FROM push_triggers WHERE name = %s RETURNING *", (name,))
        if row is None:
            raise _trigger_not_found(name)
        return _trigger(row)

    # ------------------------------------------------------------------ topics

    def create_topic(self, name: str, now: float) -> bool:
        return bool(self.db.execute("INSERT INTO push_topics VALUES (%s, %s) "
                                    "ON CONFLICT (name) DO NOTHING RETURNING name", (name, now)))

    def topics(self) -> list[str]:
        return [r["name"] for r in
                self.db.execute('SELECT name FROM push_topics ORDER BY name COLLATE "C"')]

    def delete_topic(self, name: str) -> None:
        # Its subscriptions go with it (ON DELETE CASCADE), in the same statement.
        if not self.db.execute("DELETE FROM push_topics WHERE name = %s RETURNING name",
                               (name,)):
            raise _topic_not_found(name)

    def subscribe(self, sub: Subscription) -> Subscription:
        policy = json.dumps(sub.filter_policy) if sub.filter_policy is not None else None
        try:
            rows = self.db.execute(
                "INSERT INTO push_subscriptions VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (topic, function, qualifier) DO NOTHING RETURNING id",
                (sub.id, sub.topic, sub.function, sub.qualifier, policy, sub.created_at))
        except psycopg.errors.ForeignKeyViolation:
            raise _topic_not_found(sub.topic) from None
        if rows:
            return sub
        # Another subscription of this function won (now or earlier). Rows are never updated,
        # so the one found is the one that conflicted, unless it was unsubscribed in between.
        row = self.db.one("SELECT * FROM push_subscriptions WHERE topic = %s AND function = %s "
                          "AND qualifier = %s", (sub.topic, sub.function, sub.qualifier))
        if row is None:
            return self.subscribe(sub)
        return existing_subscription(_subscription(row), sub)

    def subscriptions(self, topic: str) -> list[Subscription]:
        with self.db.transaction() as conn:  # one snapshot: the topic and its subscriptions
            if conn.execute("SELECT 1 FROM push_topics WHERE name = %s", (topic,)).fetchone() \
                    is None:
                raise _topic_not_found(topic)
            rows = conn.execute("SELECT * FROM push_subscriptions WHERE topic = %s "
                                'ORDER BY created_at, id COLLATE "C"', (topic,)).fetchall()
        return [_subscription(r) for r in rows]

    def unsubscribe(self, subscription_id: str) -> Subscription:
        row = self.db.one("DELETE FROM push_subscriptions WHERE id = %s RETURNING *",
                          (subscription_id,))
        if row is None:
            raise ResourceNotFound(f"subscription not found: {subscription_id}; see "
                                   "`runner topic get TOPIC`")
        return _subscription(row)

    def close(self) -> None:
        self.db.close()


def _trigger_not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"trigger not found: {name}; see `runner trigger list`")


def _topic_not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"topic not found: {name}; create it with `runner topic create`")


def _trigger(r: dict) -> Trigger:
    return Trigger(r["name"], r["function"], r["bucket"], tuple(json.loads(r["events"])),
                   r["prefix"], r["suffix"], r["qualifier"], r["created_at"])


def _subscription(r: dict) -> Subscription:
    fp = r["filter_policy"]
    return Subscription(r["id"], r["topic"], r["function"], r["qualifier"],
                        json.loads(fp) if fp else None, r["created_at"])
