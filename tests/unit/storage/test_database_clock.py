"""The database's clock (runner/storage/postgres/clock.py, decision 079): read from a real
PostgreSQL, cached as an offset from this host's clock, refreshed every refresh_s, and kept
when the database is away."""

from __future__ import annotations

import time

from runner.storage.postgres.clock import DatabaseClock
from runner.storage.postgres.connection import Database


class Counting:
    """A real Database, its queries counted."""

    def __init__(self, db):
        self.db, self.queries = db, 0

    def one(self, sql, params=None):
        self.queries += 1
        return self.db.one(sql, params)


def test_the_clock_follows_the_database_and_reads_it_once_per_refresh(pg_server):
    db = Database(pg_server.url)
    try:
        counting = Counting(db)
        clock = DatabaseClock(counting, refresh_s=0.5)
        t = clock()
        truth = db.one("SELECT extract(epoch from clock_timestamp())::float8 AS t")["t"]
        assert abs(t - truth) < 0.5 and abs(clock.offset) < 0.5  # same host: a tiny offset
        for _ in range(100):
            clock()
        assert counting.queries == 1  # between refreshes: no round trip
        time.sleep(0.6)
        clock()
        assert counting.queries == 2
    finally:
        db.close()


class AheadDatabase:
    """A database whose clock is an hour ahead of this host's (a real server's clock cannot be
    set by a test), or away."""

    def __init__(self):
        self.away = False

    def one(self, sql, params=None):
        if self.away:
            raise OSError("connection refused")
        return {"t": time.time() + 3600.0}


def test_a_skewed_database_clock_is_followed_and_kept_while_the_database_is_away():
    db = AheadDatabase()
    clock = DatabaseClock(db, refresh_s=0.0)  # read on every call
    assert abs(clock() - (time.time() + 3600.0)) < 0.5
    db.away = True
    assert abs(clock() - (time.time() + 3600.0)) < 0.5  # the last offset, not this host's
