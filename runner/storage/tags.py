"""Tags: key/value labels on functions (Lambda's TagResource / ListTags / UntagResource, and
CreateFunction's `Tags`). Stored per function name in `tags.db`; deleting a function deletes
its tags (Runner.delete), so a function created later under the name starts with none.

Lambda's limits: at most 50 tags per resource; keys 1-128 characters, values up to 256; keys
starting with `aws:` are reserved.
"""

from __future__ import annotations

import os
import threading
from typing import Mapping, Protocol

from runner.errors import InvalidParameter
from runner.storage.sqlite import Transaction, open_database

MAX_TAGS = 50
SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    function TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (function, key)
);
"""


class TagStore(Protocol):
    def tag(self, function: str, tags: Mapping[str, str]) -> dict[str, str]:
        """Add or overwrite `tags`; returns all of the function's tags. InvalidParameter for a
        bad key or value, or past 50 tags (nothing is changed then)."""

    def untag(self, function: str, keys: list[str]) -> None:
        """Remove these keys (absent ones are ignored, as on Lambda)."""

    def tags(self, function: str) -> dict[str, str]:
        """The function's tags ({} if none)."""

    def forget(self, function: str) -> None:
        """Remove every tag of `function` (it was deleted)."""

    def close(self) -> None:
        """Close the database."""


def validate_tags(tags: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InvalidParameter("Tags", "must be a map of key to value")
    for k, v in tags.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 128:
            raise InvalidParameter("Tags", f"key {k!r} must be 1-128 characters")
        if k.lower().startswith("aws:"):
            raise InvalidParameter("Tags", f"key {k!r}: the 'aws:' prefix is reserved")
        if not isinstance(v, str) or len(v) > 256:
            raise InvalidParameter("Tags", f"value of {k!r} must be a string of at most 256 "
                                   "characters")
    return dict(tags)


class SQLiteTagStore:
    def __init__(self, data_dir: str) -> None:
        self._db = open_database(os.path.join(data_dir, "tags.db"), SCHEMA)
        self._lock = threading.Lock()

    def tag(self, function, tags):
        tags = validate_tags(tags)
        with self._lock:
            merged = {**self._read(function), **tags}
            if len(merged) > MAX_TAGS:
                raise InvalidParameter("Tags", f"{len(merged)} tags; a function has at most "
                                       f"{MAX_TAGS}")
            with Transaction(self._db):
                self._db.executemany(
                    "INSERT INTO tags (function, key, value) VALUES (?, ?, ?) ON CONFLICT"
                    "(function, key) DO UPDATE SET value = excluded.value",
                    [(function, k, v) for k, v in tags.items()])
            return merged

    def untag(self, function, keys):
        with self._lock, Transaction(self._db):
            self._db.executemany("DELETE FROM tags WHERE function = ? AND key = ?",
                                 [(function, k) for k in keys])

    def tags(self, function):
        with self._lock:
            return self._read(function)

    def forget(self, function):
        with self._lock, Transaction(self._db):
            self._db.execute("DELETE FROM tags WHERE function = ?", (function,))

    def close(self):
        with self._lock:
            self._db.close()

    def _read(self, function):
        return {r["key"]: r["value"] for r in self._db.execute(
            "SELECT key, value FROM tags WHERE function = ? ORDER BY key", (function,))}
