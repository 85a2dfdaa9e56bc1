"""Execution roles on the shared state: the RoleStore contract of storage/roles.py in a
`roles` table of the PostgreSQL registry's database, through the registry's pool.

Why there: a role reaches invocations only through the versions the registry derives
(`derived`: a version's role variables and role generation, which are part of its pool key).
A node caches those versions, so a rotation must drop every node's cache, which is what the
registry's generation row does for function writes. Every role write bumps that row in its
own transaction; the other nodes drop their cached versions at their next generation check
(at most GENERATION_CHECK_S, 1 s), resolve them again, and so derive the new credentials
into a new pool key: the next environment started for the function carries them. A separate
roles generation would need a second check on the invoke path for the same effect.

`find` is not cached here, unlike the SQLite store: it is called only when the registry
derives a version it had not cached (a cache miss, already a few queries), and a second
cache with its own staleness could hand an old role to a version the registry had just
dropped, which would then stay cached with the old credentials until the next write.

Environments started with the old credentials on another node are not retired there (the
node rotating them retires its own, Runner.update_role): no invocation leases them any more,
since their key is the old one, and the pool's idle expiry closes them. This is how a
function update through one node leaves the other nodes' environments too.

Secrets: the table holds the secret access keys in clear, as roles.db does on one node;
what protects them is the database's access control (the runner's role in PostgreSQL), and
nothing here logs or formats a secret.
"""

from __future__ import annotations

import time

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.postgres.functions import _BUMP
from runner.storage.roles import changed_fields, role_from_row, role_name, validate_role

SCHEMA = """
CREATE TABLE IF NOT EXISTS roles (
    name              TEXT PRIMARY KEY,
    access_key_id     TEXT NOT NULL,
    secret_access_key TEXT NOT NULL,
    session_token     TEXT NOT NULL,
    endpoint_url      TEXT NOT NULL,
    s3_endpoint_url   TEXT NOT NULL,
    generation        BIGINT NOT NULL,
    updated_at        DOUBLE PRECISION NOT NULL
);
"""

_ROW = "SELECT * FROM roles WHERE name = %s"


class PostgresRoleStore:
    """RoleStore on a PostgresRegistry's database (`registry.db`, whose schema holds the
    generation row this store bumps); the pool stays the registry's (close is a no-op)."""

    def __init__(self, db) -> None:
        self._db = db
        db.apply_schema(SCHEMA)

    def create(self, name, access_key_id, secret_access_key, *, session_token="",
               endpoint_url="", s3_endpoint_url=""):
        validate_role(name, access_key_id, secret_access_key, session_token, endpoint_url,
                      s3_endpoint_url)
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO roles VALUES (%s, %s, %s, %s, %s, %s, 1, %s) "
                "ON CONFLICT (name) DO NOTHING RETURNING *",
                (name, access_key_id, secret_access_key, session_token or "",
                 endpoint_url or "", s3_endpoint_url or "", time.time())).fetchone()
            if row is None:
                raise ResourceConflict(f"role {name!r} exists; rotate it with `runner role "
                                       "update` or delete it first")
            # Versions configured with this name before it existed derive it from now on.
            conn.execute(_BUMP)
        return role_from_row(row)

    def update(self, name, **changes):
        with self._db.transaction() as conn:
            # The row lock orders concurrent rotations: each merges into the one before it.
            row = conn.execute(_ROW + " FOR UPDATE", (name,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"role {name!r} not found; create it first")
            fields = changed_fields(row, changes)
            row = conn.execute(
                "UPDATE roles SET access_key_id = %s, secret_access_key = %s, "
                "session_token = %s, endpoint_url = %s, s3_endpoint_url = %s, "
                "generation = generation + 1, updated_at = %s WHERE name = %s RETURNING *",
                (*fields.values(), time.time(), name)).fetchone()
            conn.execute(_BUMP)
        return role_from_row(row)

    def get(self, name):
        row = self._db.one(_ROW, (name,))
        if row is None:
            raise ResourceNotFound(f"role {name!r} not found; create it with `runner role "
                                   "create`")
        return role_from_row(row)

    def find(self, ref):
        row = self._db.one(_ROW, (role_name(ref),))
        return None if row is None else role_from_row(row)

    def list(self):
        return [role_from_row(r) for r in self._db.execute("SELECT * FROM roles ORDER BY name")]

    def delete(self, name):
        with self._db.transaction() as conn:
            row = conn.execute("DELETE FROM roles WHERE name = %s RETURNING *",
                               (name,)).fetchone()
            if row is None:
                raise ResourceNotFound(f"role {name!r} not found")
            conn.execute(_BUMP)
        return role_from_row(row)

    def close(self) -> None:
        """Nothing of its own to close: the pool is the registry's."""
