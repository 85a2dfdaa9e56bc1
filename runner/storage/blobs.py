"""Where a cluster keeps code: function packages and layer contents, content-addressed by
sha256, shared by every node (issue 23, decision 077).

Each node still runs code from its own disk (storage/code.py extracts a package once into the
data directory); the blob store is where a node that never saw the deploy fetches the bytes
from. Two implementations:

* `PostgresBlobStore` (storage/postgres/blobs.py): the `code_blobs` table of the state
  database, the default with `--state postgresql://`;
* `S3BlobStore` (storage/s3_blobs.py): objects `<prefix>/<sha256>` in a bucket of an
  S3-compatible store (SeaweedFS, MinIO, AWS S3), with `--code-store s3://BUCKET[/prefix]`,
  so packages up to 50 MB stay out of the database and its backups.

The embedded (SQLite) runner has no blob store: its code is only ever on its own disk.

Invariants every implementation keeps (tests/unit/storage/test_blobs.py checks them):
a blob is written whole or not at all (no reader sees part of one); `put` of a sha256 already
stored changes nothing; `get` verifies the bytes against the key before returning them, so a
damaged blob raises CorruptBlob instead of being extracted and run.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from runner.errors import BlobNotFound, CorruptBlob, InvalidParameter

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
LAYER_KIND = "layer"  # the `kind` of a layer's content (a function package's is its runtime)


class BlobStore(Protocol):
    def put(self, sha256: str, kind: str, data: bytes) -> None:
        """Store `data` under `sha256` (which the caller computed from it: `check_key` raises
        InvalidParameter when it does not match, before anything is written). `kind` is the
        runtime a function package was validated for, or LAYER_KIND: kept for operators
        reading the store, never used to find a blob. Idempotent: a sha256 already stored is
        left as it is, so concurrent deploys of the same bytes on several nodes are safe."""

    def get(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`. BlobNotFound if there are none; CorruptBlob if
        the bytes found do not hash to `sha256`."""

    def exists(self, sha256: str) -> bool:
        """Whether a blob is stored under `sha256` (its content is not read or verified)."""

    def delete(self, sha256: str) -> None:
        """Remove the blob under `sha256`; idempotent (nothing stored is not an error). Only
        for blobs no revision or layer version references: a node extracting it later would
        fail with BlobNotFound."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""


class ReadThrough:
    """A BlobStore that writes to `primary` and finds in `previous` what was stored before
    `primary` was configured, copying it to `primary` on that first read: a cluster that
    moves its code from the database to S3 (--code-store) keeps running every function
    deployed before, with no migration step, and each blob is copied once. Deletes reach both.
    Its own invariants are those of the two stores: a copy is a `put` (whole or nothing,
    idempotent) of bytes `previous.get` has already verified."""

    def __init__(self, primary: BlobStore, previous: BlobStore) -> None:
        self.primary, self.previous = primary, previous

    def put(self, sha256: str, kind: str, data: bytes) -> None:
        self.primary.put(sha256, kind, data)

    def get(self, sha256: str) -> bytes:
        try:
            return self.primary.get(sha256)
        except BlobNotFound:
            data = self.previous.get(sha256)  # BlobNotFound from here: in neither store
        self.primary.put(sha256, "moved-from-previous-store", data)
        return data

    def exists(self, sha256: str) -> bool:
        return self.primary.exists(sha256) or self.previous.exists(sha256)

    def delete(self, sha256: str) -> None:
        self.primary.delete(sha256)
        self.previous.delete(sha256)

    def close(self) -> None:
        self.primary.close()
        self.previous.close()


def check_key(sha256: str, data: bytes | None = None) -> None:
    """InvalidParameter unless `sha256` is a lowercase hex SHA-256 (and, given `data`, its
    digest): keys become object names and SQL keys, so nothing else may reach them."""
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise InvalidParameter("sha256", f"{sha256!r} is not a lowercase hex SHA-256 digest")
    if data is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidParameter("sha256", f"{sha256} is not the SHA-256 of the data given; "
                               "pass hashlib.sha256(data).hexdigest()")


def verified(sha256: str, data: bytes, where: str) -> bytes:
    """`data` if it hashes to `sha256`, else CorruptBlob naming `where` it was read from."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise CorruptBlob(f"code blob {sha256} read from {where} hashes to {actual} "
                          f"({len(data)} bytes): the stored object is damaged; restore it from a "
                          "backup or deploy the package again")
    return data
