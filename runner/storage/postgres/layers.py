"""Layers shared by every node of a cluster (issue 23, decision 077): the contract of
storage/layers.py, with the metadata in PostgreSQL and the content in the cluster's blob store
(storage/blobs.py: the code_blobs table or an S3 bucket), so a layer published through one node
can be listed, named in a configuration and mounted on any other.

* Version numbers: publishing takes a transaction-level advisory lock on the layer's name
  before reading the highest number, so two nodes publishing one name at once get N and N+1,
  never the same number (the primary key would refuse a duplicate anyway).
* Content: validated and extracted locally first (nothing is stored for a bad zip), then
  written to the blob store before the version row commits, so no node ever sees a version
  whose blob is missing. Another node extracts it into its own `layers/<sha256>/` when a
  function first needs it (opt_dir), and merges /opt trees on its own disk (layers.OptTrees).

The store uses the registry's connection pool: layer reads happen when a version is resolved
(its /opt tree), which the registry caches.
"""

from __future__ import annotations

import json
import os
import threading
import time

from runner.errors import ResourceNotFound
from runner.storage.blobs import LAYER_KIND, BlobStore
from runner.storage.code import CodeStore
from runner.storage.layers import LayerVersion, OptTrees, check_publish, parse_arn
from runner.storage.postgres import blob_gc
from runner.storage.postgres.connection import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_versions (
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    description TEXT NOT NULL,
    runtimes    TEXT NOT NULL,      -- JSON list of compatible runtime identifiers
    license     TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size   BIGINT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,   -- numbers are never reused, so rows stay
    PRIMARY KEY (name, version)
);
"""

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('layer:' || %s))"
_NOT_FOUND = ("Layer version {}:{} not found; publish it first (runner layer publish / "
              "publish-layer-version)")


class PostgresLayerStore:
    def __init__(self, db: Database, blobs: BlobStore, data_dir: str) -> None:
        self.db, self.blobs = db, blobs
        db.apply_schema(SCHEMA)
        self.code = CodeStore(os.path.join(data_dir, "layers"))  # this node's extracted trees
        self.trees = OptTrees(data_dir)
        self._extracting = threading.Lock()

    def publish(self, name, content, *, description="", compatible_runtimes=(), license=""):
        check_publish(name, description)
        digest, _ = self.code.put(content, LAYER_KIND)  # validates; raises before any write
        with self.db.transaction() as conn:
            conn.execute(blob_gc.HOLD_AS_WRITER)  # put and insert with no collection between
            self.blobs.put(digest, LAYER_KIND, content)
            conn.execute(_LOCK, (name,))
            last = conn.execute("SELECT COALESCE(MAX(version), 0) AS n FROM layer_versions "
                                "WHERE name = %s", (name,)).fetchone()["n"]
            conn.execute(
                "INSERT INTO layer_versions (name, version, description, runtimes, license, "
                "code_sha256, code_size, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (name, last + 1, description or "", json.dumps(list(compatible_runtimes or ())),
                 license or "", digest, len(content), time.time()))
        return self.get(name, last + 1)

    def get(self, name, version):
        row = self._row(name, version)
        if row["deleted"]:
            raise ResourceNotFound(f"Layer version {name}:{version} was deleted")
        return self._layer(row)

    def get_any(self, name, version):
        return self._layer(self._row(name, version))

    def list_versions(self, name):
        rows = self.db.execute("SELECT * FROM layer_versions WHERE name = %s AND NOT deleted "
                               "ORDER BY version DESC", (name,))
        return [self._layer(r) for r in rows]

    def list_layers(self):
        rows = self.db.execute(
            "SELECT DISTINCT ON (name) * FROM layer_versions WHERE NOT deleted "
            "ORDER BY name, version DESC")
        return [self._layer(r) for r in rows]

    def delete(self, name, version):
        self.db.execute("UPDATE layer_versions SET deleted = TRUE WHERE name = %s AND "
                        "version = %s", (name, version))

    def opt_dir(self, arns):
        if not arns:
            return ""
        layers = [self.get_any(*parse_arn(a)) for a in arns]
        for lv in layers:
            self._ensure_extracted(lv.code_sha256)
        return self.trees.merged(layers)

    def close(self):
        """The pool is the registry's, closed with it."""

    def _ensure_extracted(self, digest: str) -> None:
        """A layer published through another node: fetched from the blob store (BlobNotFound,
        CorruptBlob: nothing extracted) and validated again as any layer, once per node."""
        if os.path.isdir(self.code.path(digest)):
            return
        data = self.blobs.get(digest)
        with self._extracting:
            self.code.put(data, LAYER_KIND)

    def _row(self, name, version) -> dict:
        # A version past BIGINT cannot exist; asked as such it would be a database error.
        row = None if not 0 < int(version) < 1 << 63 else self.db.one(
            "SELECT * FROM layer_versions WHERE name = %s AND version = %s", (name, version))
        if row is None:
            raise ResourceNotFound(_NOT_FOUND.format(name, version))
        return row

    def _layer(self, row) -> LayerVersion:
        return LayerVersion(row["name"], row["version"], row["description"],
                            tuple(json.loads(row["runtimes"])), row["license"],
                            row["code_sha256"], row["code_size"], row["created_at"],
                            self.code.path(row["code_sha256"]))
