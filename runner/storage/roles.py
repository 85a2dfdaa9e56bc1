"""Execution roles: named sets of credentials and endpoints the server holds for functions.

On Lambda, "the execution role is the role that Lambda assumes while executing the function":
the runtime finds short-lived credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
`AWS_SESSION_TOKEN`, which a user may not set (model.RESERVED_CREDENTIAL_ENV). Here a role is
what an operator registers (`runner role create NAME --access-key-id ... [--endpoint-url]`):
a function configured with `Role=NAME` (or an IAM-style ARN ending in `role/NAME`) gets the
role's variables in its environment, plus `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` where
set, which boto3 and the AWS SDK for JavaScript honour, so unmodified SDK code reaches an
S3-compatible store.

Secrets: `roles.db` (and SQLite's -wal/-shm files, which take the database file's mode) is
created owner-only (0600) before SQLite opens it; nothing here logs or formats a secret (the
dataclass hides them from repr), and the edges return only the access key id.

Every change gives the role a new `generation`; versions that use it carry the generation in
their pool key (FunctionVersion.key), so rotated credentials reach every new environment
while environments holding the old ones are retired (Runner.update_role).

On the shared state the same contract is kept by storage/postgres/roles.py, where a change
also reaches the other nodes' cached versions (through the registry's generation row).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from runner.errors import InvalidParameter, ResourceConflict, ResourceNotFound
from runner.storage.sqlite import Transaction, open_database

_NAME_RE = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")  # IAM's role-name characters
_URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS roles (
    name              TEXT PRIMARY KEY,
    access_key_id     TEXT NOT NULL,
    secret_access_key TEXT NOT NULL,
    session_token     TEXT NOT NULL,
    endpoint_url      TEXT NOT NULL,
    s3_endpoint_url   TEXT NOT NULL,
    generation        INTEGER NOT NULL,
    updated_at        REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Role:
    name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)
    endpoint_url: str = ""
    s3_endpoint_url: str = ""
    generation: int = 1
    updated_at: float = 0.0

    def environment(self) -> dict[str, str]:
        """The variables a function with this role sees (Lambda's names, the SDKs')."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id,
               "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.s3_endpoint_url:
            env["AWS_ENDPOINT_URL_S3"] = self.s3_endpoint_url
        return env


def role_name(ref: str) -> str:
    """The role a function's `Role` names: NAME, or an ARN ending in `:role/[path/]NAME`."""
    return ref.rsplit("/", 1)[-1] if ":role/" in ref else ref


def validate_role(name: str, access_key_id: str, secret_access_key: str, session_token: str,
                  endpoint_url: str, s3_endpoint_url: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidParameter("name", f"{name!r} is not a valid role name; use 1-64 letters, "
                               "digits or +=,.@_-")
    for fld, value in (("access_key_id", access_key_id), ("secret_access_key", secret_access_key)):
        if not value or not isinstance(value, str) or any(c.isspace() or c == "\0" for c in value):
            raise InvalidParameter(fld, "is required, without spaces")
    if any(c.isspace() or c == "\0" for c in session_token or ""):
        raise InvalidParameter("session_token", "must not hold spaces")
    for fld, url in (("endpoint_url", endpoint_url), ("s3_endpoint_url", s3_endpoint_url)):
        if url and not _URL_RE.match(url):
            raise InvalidParameter(fld, f"{url!r} is not an http(s) URL (e.g. http://127.0.0.1:8333)")


FIELDS = ("access_key_id", "secret_access_key", "session_token", "endpoint_url",
          "s3_endpoint_url")


def changed_fields(row, changes: dict) -> dict[str, str]:
    """A role row's fields with `changes` (None: unchanged) applied, validated, in FIELDS'
    order; InvalidParameter names an unknown or bad field."""
    fields = {k: row[k] for k in FIELDS}
    unknown = set(changes) - set(fields)
    if unknown:
        raise InvalidParameter(sorted(unknown)[0], "is not a role field")
    fields.update({k: v for k, v in changes.items() if v is not None})
    validate_role(row["name"], **fields)
    return fields


class RoleStore(Protocol):
    def create(self, name: str, access_key_id: str, secret_access_key: str, *,
               session_token: str = "", endpoint_url: str = "", s3_endpoint_url: str = "") -> Role:
        """A new role; ResourceConflict if the name is taken, InvalidParameter for bad fields."""

    def update(self, name: str, **changes: str) -> Role:
        """Change the given fields (rotation); the generation grows. ResourceNotFound."""

    def get(self, name: str) -> Role:
        """ResourceNotFound if there is none."""

    def find(self, ref: str) -> Role | None:
        """The role a function's `Role` (a name or ARN) names, or None (no such role)."""

    def list(self) -> list[Role]:
        """All roles by name."""

    def delete(self, name: str) -> Role:
        """Remove the role; returns it. ResourceNotFound."""

    def close(self) -> None:
        """Close the database."""


class SQLiteRoleStore:
    def __init__(self, data_dir: str) -> None:
        path = os.path.join(data_dir, "roles.db")
        # Owner-only from the first byte: SQLite gives its -wal and -shm files this mode too.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self._db = open_database(path, SCHEMA)
        self._lock = threading.Lock()
        self._cache: dict[str, Role | None] = {}

    def create(self, name, access_key_id, secret_access_key, *, session_token="",
               endpoint_url="", s3_endpoint_url=""):
        validate_role(name, access_key_id, secret_access_key, session_token, endpoint_url,
                      s3_endpoint_url)
        with self._lock:
            if self._row(name) is not None:
                raise ResourceConflict(f"role {name!r} exists; rotate it with `runner role "
                                       "update` or delete it first")
            with Transaction(self._db):
                self._db.execute(
                    "INSERT INTO roles VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                    (name, access_key_id, secret_access_key, session_token or "",
                     endpoint_url or "", s3_endpoint_url or "", time.time()))
            self._cache.clear()
        return self.get(name)

    def update(self, name, **changes):
        with self._lock:
            row = self._row(name)
            if row is None:
                raise ResourceNotFound(f"role {name!r} not found; create it first")
            fields = changed_fields(row, changes)
            with Transaction(self._db):
                self._db.execute(
                    "UPDATE roles SET access_key_id = ?, secret_access_key = ?, "
                    "session_token = ?, endpoint_url = ?, s3_endpoint_url = ?, "
                    "generation = generation + 1, updated_at = ? WHERE name = ?",
                    (*fields.values(), time.time(), name))
            self._cache.clear()
        return self.get(name)

    def get(self, name):
        with self._lock:
            row = self._row(name)
        if row is None:
            raise ResourceNotFound(f"role {name!r} not found; create it with `runner role "
                                   "create`")
        return role_from_row(row)

    def find(self, ref):
        name = role_name(ref)
        try:
            return self._cache[name]
        except KeyError:
            pass
        with self._lock:
            row = self._row(name)
            hit = None if row is None else role_from_row(row)
            self._cache[name] = hit
            return hit

    def list(self):
        with self._lock:
            rows = self._db.execute("SELECT * FROM roles ORDER BY name").fetchall()
        return [role_from_row(r) for r in rows]

    def delete(self, name):
        with self._lock:
            row = self._row(name)
            if row is None:
                raise ResourceNotFound(f"role {name!r} not found")
            with Transaction(self._db):
                self._db.execute("DELETE FROM roles WHERE name = ?", (name,))
            self._cache.clear()
        return role_from_row(row)

    def close(self):
        with self._lock:
            self._db.close()

    def _row(self, name):
        return self._db.execute("SELECT * FROM roles WHERE name = ?", (name,)).fetchone()


def role_from_row(row) -> Role:
    """A Role from a row of the `roles` table (sqlite3.Row or a PostgreSQL dict row)."""
    return Role(row["name"], row["access_key_id"], row["secret_access_key"],
                row["session_token"], row["endpoint_url"], row["s3_endpoint_url"],
                row["generation"], row["updated_at"])
