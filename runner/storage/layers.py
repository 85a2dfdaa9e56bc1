"""Layers: immutable, numbered zips of shared code, mounted at /opt in a function's sandbox.

As on Lambda: publishing a layer name gives it the next version number (1, 2, ...); a version
never changes; deleting one removes it from listings and from what new configurations may
name, while functions that already use it keep their copy (the content stays on disk: it is
content-addressed, like function code, and shared by every version with the same bytes).

Content is validated and extracted by the code store's rules (storage/code.py: zip-slip,
bombs, size limits) into `layers/<sha256>/` under the data directory; the metadata is in
`layers.db` (SQLiteLayerStore, the embedded default). In a cluster, postgres/layers.py keeps
the metadata in PostgreSQL and the content in the cluster's blob store (storage/blobs.py),
each node extracting it into the same local layout on first use. A function names layer versions by ARN (`arn:aws:lambda:REGION:ACCOUNT:layer:
NAME:N`); `parse_arn` accepts any region, since the region is a server setting that may change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from runner.errors import InvalidParameter, ResourceNotFound
from runner.storage.blobs import LAYER_KIND
from runner.storage.code import CodeStore
from runner.storage.sqlite import Transaction, open_database

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,140}$")
_ARN_RE = re.compile(r"^arn:[\w-]+:lambda:[\w-]+:\d{12}:layer:([A-Za-z0-9_-]{1,140}):(\d{1,9})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_versions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    description TEXT NOT NULL,
    runtimes    TEXT NOT NULL,      -- JSON list of compatible runtime identifiers
    license     TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size   INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,   -- numbers are never reused, so rows stay
    PRIMARY KEY (name, version)
);
"""


@dataclass(frozen=True)
class LayerVersion:
    name: str
    version: int
    description: str
    compatible_runtimes: tuple[str, ...]
    license: str
    code_sha256: str
    code_size: int
    created_at: float
    path: str  # the extracted, read-only content


def check_publish(name, description) -> None:
    """InvalidParameter for a layer name or description Lambda would refuse."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidParameter("LayerName", f"{name!r} is not a valid layer name; use "
                               "1-140 letters, digits, '-' or '_'")
    if len(description or "") > 256:
        raise InvalidParameter("Description", "at most 256 characters")


def parse_arn(arn: str) -> tuple[str, int]:
    m = _ARN_RE.match(arn or "") if isinstance(arn, str) else None
    if m is None:
        raise InvalidParameter("Layers", f"{arn!r} is not a layer version ARN "
                               "(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)")
    return m.group(1), int(m.group(2))


class LayerStore(Protocol):
    def publish(self, name: str, content: bytes, *, description: str = "",
                compatible_runtimes: tuple[str, ...] = (), license: str = "") -> LayerVersion:
        """Store `content` (a zip) as the next version of `name`. InvalidParameter for a bad
        name, InvalidCodePackage for a bad zip; nothing is stored then."""

    def get(self, name: str, version: int) -> LayerVersion:
        """One version; ResourceNotFound if it never existed or was deleted."""

    def get_any(self, name: str, version: int) -> LayerVersion:
        """One version even if deleted (what functions that use it still mount)."""

    def list_versions(self, name: str) -> list[LayerVersion]:
        """The live versions of `name`, newest first."""

    def list_layers(self) -> list[LayerVersion]:
        """The newest live version of every layer, by name."""

    def delete(self, name: str, version: int) -> None:
        """Remove a version from listings (idempotent, as Lambda's DeleteLayerVersion)."""

    def opt_dir(self, arns: tuple[str, ...]) -> str:
        """The host directory a function with these layers sees at /opt ("" for none): the
        layers' contents merged in order (OptTrees), extracted on this node first if
        they are not yet (a shared store's layer published through another node)."""

    def close(self) -> None:
        """Close the database."""


class SQLiteLayerStore:
    def __init__(self, data_dir: str) -> None:
        self.code = CodeStore(os.path.join(data_dir, "layers"))
        self.trees = OptTrees(data_dir)  # merged /opt trees (below)
        self._db = open_database(os.path.join(data_dir, "layers.db"), SCHEMA)
        self._lock = threading.Lock()

    def publish(self, name, content, *, description="", compatible_runtimes=(), license=""):
        check_publish(name, description)
        digest, _ = self.code.put(content, LAYER_KIND)
        with self._lock, Transaction(self._db):
            (last,) = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM layer_versions "
                                       "WHERE name = ?", (name,)).fetchone()
            self._db.execute(
                "INSERT INTO layer_versions (name, version, description, runtimes, license, "
                "code_sha256, code_size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, last + 1, description or "", json.dumps(list(compatible_runtimes or ())),
                 license or "", digest, len(content), time.time()))
        return self.get(name, last + 1)

    def get(self, name, version):
        found = self.get_any(name, version)
        row = self._db.execute("SELECT deleted FROM layer_versions WHERE name = ? AND "
                               "version = ?", (name, version)).fetchone()
        if row["deleted"]:
            raise ResourceNotFound(f"Layer version {name}:{version} was deleted")
        return found

    def get_any(self, name, version):
        with self._lock:
            row = self._db.execute("SELECT * FROM layer_versions WHERE name = ? AND "
                                   "version = ?", (name, version)).fetchone()
        if row is None:
            raise ResourceNotFound(f"Layer version {name}:{version} not found; publish it "
                                   "first (runner layer publish / publish-layer-version)")
        return self._layer(row)

    def list_versions(self, name):
        with self._lock:
            rows = self._db.execute("SELECT * FROM layer_versions WHERE name = ? AND "
                                    "deleted = 0 ORDER BY version DESC", (name,)).fetchall()
        return [self._layer(r) for r in rows]

    def list_layers(self):
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM layer_versions l WHERE deleted = 0 AND version = (SELECT "
                "MAX(version) FROM layer_versions m WHERE m.name = l.name AND deleted = 0) "
                "ORDER BY name").fetchall()
        return [self._layer(r) for r in rows]

    def delete(self, name, version):
        with self._lock, Transaction(self._db):
            self._db.execute("UPDATE layer_versions SET deleted = 1 WHERE name = ? AND "
                             "version = ?", (name, version))

    def opt_dir(self, arns):
        if not arns:
            return ""
        return self.trees.merged([self.get_any(*parse_arn(a)) for a in arns])

    def close(self):
        with self._lock:
            self._db.close()

    def _layer(self, row) -> LayerVersion:
        return LayerVersion(row["name"], row["version"], row["description"],
                            tuple(json.loads(row["runtimes"])), row["license"],
                            row["code_sha256"], row["code_size"], row["created_at"],
                            self.code.path(row["code_sha256"]))

# ---------------------------------------------------------------- merged /opt trees (decision 057)
# For either store (SQLite here, postgres/layers.py shared). Lambda extracts a function's layers
# into /opt in order, a later layer's file replacing an earlier one's. Here that merge is made
# once per ordered list of contents, as hard links into the layers' read-only trees (no copy;
# the same inode, so the content cannot differ from the layer's), under
# `layers-opt/<sha256 of the list>/` in the data directory, and the sandbox binds it read-only at
# /opt. Content-addressed: built atomically (staging, rename), never changed, shared by every
# version with the same layers. The layers' own trees must be extracted first (the store's job).


class OptTrees:
    def __init__(self, data_dir: str) -> None:
        self.root = os.path.join(data_dir, "layers-opt")
        self._staging = os.path.join(self.root, ".staging")
        shutil.rmtree(self._staging, ignore_errors=True)  # an interrupted merge
        os.makedirs(self._staging, exist_ok=True)

    def merged(self, layers) -> str:
        """The merged tree of `layers` (LayerVersions, in mount order; their paths exist)."""
        key = hashlib.sha256("\n".join(lv.code_sha256 for lv in layers).encode()).hexdigest()
        final = os.path.join(self.root, key)
        if os.path.isdir(final):
            return final
        work = tempfile.mkdtemp(dir=self._staging)
        try:
            for lv in layers:
                _merge_into(lv.path, work)
            for d, _, _ in os.walk(work):
                os.chmod(d, 0o555)  # world-readable: the guest runs as another uid
            try:
                os.rename(work, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
        finally:
            if os.path.exists(work):
                for d, _, _ in os.walk(work):
                    os.chmod(d, 0o755)
                shutil.rmtree(work, ignore_errors=True)
        return final


def _merge_into(src: str, dest: str) -> None:
    """Hard-link every file of `src` into `dest`, replacing what an earlier layer put there."""
    for d, dirs, files in os.walk(src):
        rel = os.path.relpath(d, src)
        target = dest if rel == "." else os.path.join(dest, rel)
        if os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)  # a file of an earlier layer where this one has a directory
        os.makedirs(target, mode=0o755, exist_ok=True)
        for f in files:
            out = os.path.join(target, f)
            if os.path.isdir(out) and not os.path.islink(out):
                shutil.rmtree(out)
            elif os.path.lexists(out):
                os.unlink(out)
            os.link(os.path.join(d, f), out)
