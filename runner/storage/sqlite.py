"""SQLite helpers shared by the stores (functions and routes in registry.db, events in events.db)."""

from __future__ import annotations

import sqlite3


def open_database(path: str, schema: str, busy_timeout_ms: int = 0) -> sqlite3.Connection:
    """A connection as every store uses one: autocommit (writes go through Transaction), rows
    by name, WAL, and synchronous=FULL, i.e. the WAL is fsync'ed at every commit, so a
    committed write survives kill -9 and power loss. Shared by the threads of its store under
    the store's own lock (check_same_thread off). `busy_timeout_ms` for a second connection
    to a file another store also writes (routes beside the functions in registry.db)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if busy_timeout_ms:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    db.executescript(schema)
    return db


class Transaction:
    """`with Transaction(db):` runs the block in BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an
    exception. IMMEDIATE takes the write lock up front, so two writers never both read and
    then fail to upgrade (SQLITE_BUSY halfway through a deploy or an enqueue)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_) -> bool:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
