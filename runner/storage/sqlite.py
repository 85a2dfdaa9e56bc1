"""SQLite helpers shared by the stores (functions and routes in registry.db, events in events.db)."""

from __future__ import annotations

import sqlite3


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
