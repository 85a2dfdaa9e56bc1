"""The code blob store in PostgreSQL (storage/blobs.py): the `code_blobs` table of the state
database, one row per sha256. The default code store of a cluster: nothing to configure
beyond `--state`, at the price of packages living in the database (and its backups).

It has a small pool of its own (POOLS["blobs"], taken from the registry's): the registry
writes a blob while its deploy transaction holds one of its own connections, and with a
shared pool a burst of deploys would each hold a connection waiting for another.
"""

from __future__ import annotations

from runner.errors import BlobNotFound
from runner.storage.blobs import check_key, verified
from runner.storage.postgres.connection import POOLS, Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS code_blobs (
    sha256      TEXT PRIMARY KEY,
    runtime     TEXT NOT NULL,      -- the blob's kind: a function's runtime, or 'layer'
    data        BYTEA NOT NULL
);
"""


class PostgresBlobStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, size=POOLS["blobs"])

    def put(self, sha256: str, kind: str, data: bytes) -> None:
        check_key(sha256, data)
        # One statement: the row appears whole at commit; a concurrent put of the same
        # digest (another node deploying the same bytes) is a no-op, not a conflict.
        self.db.execute("INSERT INTO code_blobs (sha256, runtime, data) VALUES (%s, %s, %s) "
                        "ON CONFLICT (sha256) DO NOTHING", (sha256, kind, data))

    def get(self, sha256: str) -> bytes:
        check_key(sha256)
        row = self.db.one("SELECT data FROM code_blobs WHERE sha256 = %s", (sha256,))
        if row is None:
            raise BlobNotFound(f"code blob {sha256} is missing from the PostgreSQL code store "
                               "(table code_blobs); deploy the package (or publish the layer) "
                               "again")
        return verified(sha256, bytes(row["data"]), "PostgreSQL (table code_blobs)")

    def exists(self, sha256: str) -> bool:
        check_key(sha256)
        return self.db.one("SELECT 1 AS x FROM code_blobs WHERE sha256 = %s", (sha256,)) is not None

    def delete(self, sha256: str) -> None:
        check_key(sha256)
        self.db.execute("DELETE FROM code_blobs WHERE sha256 = %s", (sha256,))

    def close(self) -> None:
        self.db.close()
