"""V8 user-land startup snapshots for Node handlers with a heavy init (opt-in): which versions
get one, and the store of blobs by content.

Node cannot fork a zygote, but it can start from a snapshot of a heap in which the handler's
module-level code has already run: `node --snapshot-blob h.blob --build-snapshot entry.js` once
per version (snapshot_build.py), then every environment starts as `node --snapshot-blob h.blob`
(runtime.py asks `blob_for`). The pre-start pool launches those processes ahead of demand, so a
cold start skips both node's start-up and the handler's init.

Opt-in, per function: set the variable named by `OPT_IN_VAR` to 1 in the function's environment
(a function's variable, not a server setting, so it is read here and not in runner/settings.py),
or construct the store with enabled=True to snapshot every eligible version, as
bench/node_bench.py does. Eligible: a CommonJS handler file (.js outside a "type": "module"
package, or .cjs) that requires built-in modules only: `--build-snapshot` cannot load files from
disk, so the handler must be bundled into one file. An ineligible or failing build falls back to
a normal start (logged, and `reason(version)` says why); the function still runs.

Caveats (also in docs/runtimes-nodejs.md): module-level code runs once at build time, so values
it computes (timestamps, random numbers, environment reads) are the same in every environment;
Math.random itself is reseeded by V8 on deserialisation. How the build is confined and bounded:
snapshot_build.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading

from runner.environments.node import process_policy, snapshot_build
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

OPT_IN_VAR = "RUNNER_NODE_SNAPSHOT"


def wants_snapshot(version: FunctionVersion) -> bool:
    return version.config.environment.get(OPT_IN_VAR, "").lower() in ("1", "true", "yes")


def content_key(version: FunctionVersion) -> str:
    """What a blob depends on: the code and the configuration (module-level code may read the
    environment; the heap flags come from memory_mb). Not the revision: the deploy-time
    validation of a version (a would-be revision) and the stored version share one build."""
    ident = json.dumps([version.code_sha256, version.code_dir, version.config.to_dict()],
                       sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


class SnapshotStore:
    """Snapshot blobs by content key (code + configuration), built at prepare time.

    Thread-safe; one build per key at a time (a per-key lock), so the pool's prepare and the
    pre-start thread never build the same blob twice. A blob is deleted when the last version
    that started environments from it is forgotten."""

    def __init__(self, node_path: str, root: str, *, enabled: bool = False,
                 prlimit: str | None = "auto") -> None:
        # How builds start node, given by the caller (the same choices as NodeRuntime's): the
        # binary, and util-linux `prlimit` for RLIMIT_DATA ("auto": look it up; None: not used).
        self.node_path = node_path
        self.prlimit = process_policy.resolve_prlimit(prlimit)
        self.root = root
        self.enabled = enabled  # True: every eligible version; False: only opted-in ones
        self._lock = threading.Lock()
        self._blobs: dict[str, str | None] = {}  # content key -> blob path (None: build failed)
        self._reasons: dict[str, str] = {}
        self._users: dict[str, set[str]] = {}  # content key -> version keys that used the blob
        self._building: dict[str, threading.Lock] = {}
        # confinement/namespaces.py mounts a private /tmp in every sandbox, hiding host paths under /tmp: a
        # store meant to live there (tests, benchmarks) moves to /var/tmp, which sandboxes see.
        if os.path.realpath(root).startswith("/tmp/"):
            digest = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
            root = self.root = os.path.join("/var/tmp", f"runner-node-snapshots-{digest}")
        # The store owns `root`. Blobs left by an earlier server run are unreachable (the index
        # is in memory) and 5-10 MB each: start empty.
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)  # traversable by guests' own uids (see snapshot_build.build)

    def wanted(self, version: FunctionVersion) -> bool:
        return self.enabled or wants_snapshot(version)

    def blob_for(self, version: FunctionVersion) -> str | None:
        """The blob environments of `version` start from (None: start normally)."""
        ckey = content_key(version)
        with self._lock:
            blob = self._blobs.get(ckey)
            if blob is not None:
                self._users.setdefault(ckey, set()).add(version.key)
            return blob

    def reason(self, version: FunctionVersion) -> str | None:
        """Why `version` has no snapshot although one was wanted; None otherwise."""
        with self._lock:
            return self._reasons.get(content_key(version))

    def prepare(self, version: FunctionVersion) -> None:
        """Build the version's blob once, if wanted. Failures fall back to a normal start."""
        if not self.wanted(version):
            return
        ckey = content_key(version)
        with self._lock:
            if ckey in self._blobs:
                return
            building = self._building.setdefault(ckey, threading.Lock())
        with building:
            with self._lock:
                if ckey in self._blobs:
                    return  # built by another thread while this one waited
            blob, reason = snapshot_build.build(version, self.root, self.node_path, self.prlimit)
            with self._lock:
                self._blobs[ckey] = blob
                if reason:
                    self._reasons[ckey] = reason
        if reason:
            log.warning("no startup snapshot for %s, starting normally: %s", version.key, reason)

    def forget(self, version: FunctionVersion) -> None:
        """`version` is retired; its blob goes once no other version started from it."""
        ckey = content_key(version)
        with self._lock:
            users = self._users.get(ckey, set())
            users.discard(version.key)
            if users:
                return
            blob = self._blobs.pop(ckey, None)
            self._reasons.pop(ckey, None)
            self._users.pop(ckey, None)
        if blob:
            shutil.rmtree(os.path.dirname(blob), ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._blobs.clear()
        shutil.rmtree(self.root, ignore_errors=True)
