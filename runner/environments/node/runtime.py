"""The Node.js runtime: `node --max-old-space-size=N node_bootstrap.js`, one process per
environment.

The Node counterpart of python/runtime.py, plugged into process/environment.py. The bootstrap
(guest/node_bootstrap.js) is plain Node with no npm dependencies. How the node process is started
and bounded (heap flags, RLIMIT_DATA through prlimit, no RLIMIT_AS, the runtime's variables) is
process_policy.py; where the handler's module is, handler.py. What is specific to this module:

* V8 answers a heap blow-up with "FATAL ERROR: ... JavaScript heap out of memory" and abort()
  (SIGABRT, or exit status 134 behind a shell); `classify_death` turns that into
  FunctionOutOfMemory instead of a generic crash.
* Optionally the process starts from a V8 startup snapshot that already holds the evaluated
  handler (snapshot.py), for handlers with a heavy init.
"""

from __future__ import annotations

import logging
import signal

from runner import settings
from runner.environments.node import handler, memory_sharing, process_policy
from runner.environments.node.snapshot import SnapshotStore
from runner.errors import FunctionError, FunctionOutOfMemory
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

# Markers V8 and node print on a fatal heap exhaustion (checked in the log, case-sensitive).
OOM_MARKERS = (b"JavaScript heap out of memory", b"Reached heap limit", b"FatalProcessOutOfMemory")


class NodeRuntime:
    name = "nodejs"
    address_space_limit = process_policy.ADDRESS_SPACE_LIMIT  # RLIMIT_AS breaks V8

    def __init__(self, node_path: str, snapshots: SnapshotStore | None = None,
                 prlimit: str | None = "auto") -> None:
        self.node_path = node_path
        # Path of util-linux `prlimit`, used to start node under RLIMIT_DATA; None: not used.
        self.prlimit = process_policy.resolve_prlimit(prlimit)
        # None: snapshot mode off for every version (prepare() builds blobs where wanted).
        self.snapshots = snapshots
        # RUNNER_KSM=on: environments started so that their heaps can merge (memory_sharing.py).
        self.sharing = memory_sharing.enable() if settings.current().ksm else None

    @property
    def spare_init(self) -> bool:
        """Backend.spare_init (base.py): spares load the handler ahead of demand (decision 069)
        unless RUNNER_NODE_PREINIT=off, read at each launch as before."""
        return settings.current().node_preinit

    def command(self, version: FunctionVersion) -> list[str]:
        blob = self.snapshots.blob_for(version) if self.snapshots is not None else None
        # A startup snapshot is checked against the V8 flags it was built with, so the
        # sharing seed applies to plain starts only (a snapshot's heap is its own anyway).
        seeded = self.sharing is not None and blob is None
        argv = process_policy.node_argv(self.node_path, self.prlimit, version.config.memory_mb,
                                        self.sharing.v8_flags() if seeded else ())
        if self.sharing is not None:
            argv = self.sharing.wrap(argv)
        if blob is not None:
            # The blob's deserialize-main function is the bootstrap with the handler preloaded.
            return argv + ["--snapshot-blob", blob]
        return argv + [process_policy.BOOTSTRAP]

    def environment(self, version: FunctionVersion) -> dict[str, str]:
        env = dict(process_policy.RUNTIME_ENVIRONMENT)
        if self.sharing is not None:
            env.update(self.sharing.environment())
        return env

    def check_code(self, version: FunctionVersion) -> None:
        """Warns, never refuses, for a missing module (issue 20: Lambda reports it at invoke
        as Runtime.ImportModuleError; the module may come from a layer via NODE_PATH)."""
        if handler.module_present(version):
            if self.snapshots is not None:
                self.snapshots.prepare(version)  # opt-in; falls back to a normal start
            return
        module, candidates = handler.handler_files(version)
        log.warning("%s: module %r not found in the code package (looked for %s and "
                    "node_modules/%s); invocations will fail with Runtime.ImportModuleError "
                    "unless a layer provides it", version.name, module, ", ".join(candidates),
                    module)

    def forget(self, version: FunctionVersion) -> None:
        """The version is retired: drop its snapshot blob, if any."""
        if self.snapshots is not None:
            self.snapshots.forget(version)

    def close(self) -> None:
        """Remove the snapshot store's directory (blobs of 5-10 MB each): left behind, every
        runner that ever built one kept it on disk."""
        if self.snapshots is not None:
            self.snapshots.close()

    def classify_death(self, version: FunctionVersion, returncode: int | None,
                       logs: bytes) -> FunctionError | None:
        """V8's heap-limit abort -> FunctionOutOfMemory; anything else is left to
        process/environment.py.

        Needs both the abort and V8's message: V8 aborts for other fatal errors too (those are
        crashes), and a handler may print the phrase itself and exit normally."""
        aborted = returncode in (-signal.SIGABRT, 128 + signal.SIGABRT)
        if aborted and any(m in logs for m in OOM_MARKERS):
            return FunctionOutOfMemory.at(version.config.memory_mb, "JavaScript heap out of memory")
        return None
