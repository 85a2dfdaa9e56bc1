"""The Node.js runtime: `node --max-old-space-size=N node_bootstrap.js`, one process per
environment.

Mirrors python.py. The bootstrap (runner/environments/node/guest/node_bootstrap.js) is plain Node with no npm
dependencies. What is specific to Node:

* No RLIMIT_AS: V8 reserves far more address space than it ever touches (its pointer cage alone
  is 4 GiB), so an address-space cap kills it at start-up. Memory is bounded by the cgroup where
  limits.py has one, and always by V8's own heap limit, set here from memory_mb.
* Off-heap memory (Buffers, typed arrays, native allocations) is outside V8's heap limit. Where
  `prlimit` (util-linux) exists, node is started under RLIMIT_DATA, which counts committed
  private writable memory but not the PROT_NONE reservations that make RLIMIT_AS unusable: a
  Buffer hog then makes V8 fail to commit memory and abort with the same out-of-memory message.
  Without it, only a cgroup bounds off-heap memory (docs/runtimes-nodejs.md).
* V8 answers a heap blow-up with "FATAL ERROR: ... JavaScript heap out of memory" and abort()
  (SIGABRT, or exit status 134 behind a shell); `classify_death` turns that into
  FunctionOutOfMemory instead of a generic crash.
* The server's own NODE_OPTIONS, NODE_EXTRA_CA_CERTS etc. never reach a guest: process.py builds
  the guest's environment from scratch (a function may still set NODE_OPTIONS in its own
  configuration, as on Lambda).
* Optionally the process starts from a V8 startup snapshot that already holds the evaluated
  handler (node_snapshot.py), for handlers with a heavy init.
"""

from __future__ import annotations

import os
import shutil
import signal

from runner.environments.node.snapshot import SnapshotStore
from runner.errors import FunctionError, FunctionOutOfMemory, InvalidCodePackage
from runner.model import MB, FunctionVersion

GUEST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")  # runs in the sandbox
BOOTSTRAP = os.path.join(GUEST_DIR, "node_bootstrap.js")
MPACK = os.path.join(GUEST_DIR, "node_mpack.js")

# Memory not available to V8's old space: node's own resident baseline (measured: ~40 MB RSS for
# `node -e 1` on Node 20) plus the young generation (up to 3 semi-spaces of 8 MB, capped below).
# With this headroom the V8 heap limit trips before a cgroup limit of memory_mb, so a heap
# blow-up reports a clear "JavaScript heap out of memory" rather than a bare kernel OOM kill.
NODE_OVERHEAD_MB = 64
MIN_OLD_SPACE_MB = 32  # below this node cannot even load a modest handler
SEMI_SPACE_MB = 8  # young-generation semi-space cap; V8's default (16 MB) is sized for servers

# RLIMIT_DATA over memory_mb. Measured: an idle node 20 after an ESM import has VmData ~82 MB for
# ~44 MB RSS, because the reserved stacks of its ~11 threads (8 MB each, mostly untouched) count.
# 64 MB of headroom keeps start-up and those stacks inside the limit at memory_mb = 128.
DATA_HEADROOM_MB = 64

# Markers V8 and node print on a fatal heap exhaustion (checked in the log, case-sensitive).
OOM_MARKERS = (b"JavaScript heap out of memory", b"Reached heap limit", b"FatalProcessOutOfMemory")


def find_node() -> str | None:
    """Absolute, symlink-resolved path of the `node` binary, or None if this host has none."""
    found = shutil.which("node", path=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    return os.path.realpath(found) if found else None


def find_prlimit() -> str | None:
    found = shutil.which("prlimit", path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return os.path.realpath(found) if found else None


def old_space_mb(memory_mb: int) -> int:
    return max(MIN_OLD_SPACE_MB, memory_mb - NODE_OVERHEAD_MB)


def handler_files(version: FunctionVersion) -> tuple[str, list[str]]:
    """(module name, candidate files relative to the code dir) for the configured handler."""
    spec = version.config.handler
    slash = spec.rfind("/")
    module_root, rest = spec[: slash + 1], spec[slash + 1 :]
    module = rest.split(".", 1)[0]
    return module, [f"{module_root}{module}{ext}" for ext in (".js", ".mjs", ".cjs")]


class NodeRuntime:
    name = "nodejs"
    address_space_limit = False  # see the module docstring: RLIMIT_AS breaks V8

    def __init__(self, node_path: str, snapshots: SnapshotStore | None = None,
                 prlimit: str | None = "auto") -> None:
        self.node_path = node_path
        # Path of util-linux `prlimit`, used to start node under RLIMIT_DATA; None: not used.
        self.prlimit = find_prlimit() if prlimit == "auto" else prlimit
        # None: snapshot mode off for every version (prepare() builds blobs where wanted).
        self.snapshots = snapshots

    def command(self, version: FunctionVersion) -> list[str]:
        mem = version.config.memory_mb
        argv = []
        if self.prlimit is not None:
            # prlimit sets the limit on itself and execs node: same pid, limit in force before
            # node's first instruction, inherited by anything the guest spawns.
            data = (mem + DATA_HEADROOM_MB) * MB
            argv = [self.prlimit, f"--data={data}:{data}", "--"]
        argv += [
            self.node_path,
            f"--max-old-space-size={old_space_mb(mem)}",
            f"--max-semi-space-size={SEMI_SPACE_MB}",
        ]
        blob = self.snapshots.blob_for(version) if self.snapshots is not None else None
        if blob is not None:
            # The blob's deserialize-main function is the bootstrap with the handler preloaded.
            return argv + ["--snapshot-blob", blob]
        return argv + [BOOTSTRAP]

    def environment(self, version: FunctionVersion) -> dict[str, str]:
        return {"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x", "NODE_ENV": "production"}

    def check_code(self, version: FunctionVersion) -> None:
        module, candidates = handler_files(version)
        root = version.code_dir
        found = any(os.path.isfile(os.path.join(root, c)) for c in candidates)
        # Otherwise the handler module may be a package shipped in node_modules/.
        if found or os.path.isdir(os.path.join(root, "node_modules", module)):
            if self.snapshots is not None:
                self.snapshots.prepare(version)  # opt-in; falls back to a normal start
            return
        raise InvalidCodePackage(
            "handler",
            f"module {module!r} not found in the code package (looked for "
            f"{', '.join(candidates)} and node_modules/{module}); check --handler and the zip's layout",
        )

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
        """V8's heap-limit abort -> FunctionOutOfMemory; anything else is left to process.py.

        Needs both the abort and V8's message: V8 aborts for other fatal errors too (those are
        crashes), and a handler may print the phrase itself and exit normally."""
        aborted = returncode in (-signal.SIGABRT, 128 + signal.SIGABRT)
        if aborted and any(m in logs for m in OOM_MARKERS):
            return FunctionOutOfMemory.at(version.config.memory_mb, "JavaScript heap out of memory")
        return None
