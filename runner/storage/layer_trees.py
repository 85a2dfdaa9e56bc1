"""The /opt tree of a function's layers, on this node's disk (decision 057), for either layer
store (storage/layers.py embedded, storage/postgres/layers.py shared).

Lambda extracts a function's layers into /opt in order, a later layer's file replacing an
earlier one's. Here that merge is made once per ordered list of contents, as hard links into
the layers' read-only trees (no copy; the same inode, so the content cannot differ from the
layer's), under `layers-opt/<sha256 of the list>/` in the data directory, and the sandbox binds
it read-only at /opt. Content-addressed: built atomically (staging, rename), never changed,
shared by every version with the same layers. The layers' own trees must be extracted first
(the store's job: `LayerVersion.path`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile


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
