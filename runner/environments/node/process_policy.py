"""What a `node` process of this runtime is: which binary, which guest files, which command
line, which memory bounds and which runtime variables.

Both an environment's process (runtime.py) and a snapshot build (snapshot_build.py) start node
this way, so a blob is built under the same heap flags and RLIMIT_DATA as the environments that
start from it. Nothing here runs a process.

Memory policy, and why (details in docs/runtimes-nodejs.md):

* No RLIMIT_AS: V8 reserves far more address space than it ever touches (its pointer cage alone
  is 4 GiB), so an address-space cap kills it at start-up (`ADDRESS_SPACE_LIMIT`). Memory is
  bounded by the cgroup where confinement/limits.py has one, and always by V8's own heap limit,
  set from memory_mb (`old_space_mb`).
* Off-heap memory (Buffers, typed arrays, native allocations) is outside V8's heap limit. Where
  `prlimit` (util-linux) exists, node is started under RLIMIT_DATA, which counts committed
  private writable memory but not the PROT_NONE reservations that make RLIMIT_AS unusable: a
  Buffer hog then makes V8 fail to commit memory and abort with the same out-of-memory message.
  Without it, only a cgroup bounds off-heap memory.
"""

from __future__ import annotations

import os
import shutil

from runner.model import MB

# The guest code, run inside the sandbox: plain Node, no npm packages. Resolved once, here.
GUEST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")
BOOTSTRAP = os.path.join(GUEST_DIR, "node_bootstrap.js")
MPACK = os.path.join(GUEST_DIR, "node_mpack.js")

# RLIMIT_AS breaks V8 (see the module docstring); handed to confinement as the runtime's
# tolerance of an address-space cap.
ADDRESS_SPACE_LIMIT = False

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

# Variables the runtime adds to the guest's environment (after Lambda's reserved ones). The
# server's own NODE_OPTIONS, NODE_EXTRA_CA_CERTS etc. never reach a guest: process/lambda_env.py
# builds the guest's environment from scratch (a function may still set NODE_OPTIONS in its own
# configuration, as on Lambda).
RUNTIME_ENVIRONMENT = {"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x", "NODE_ENV": "production"}


def find_node() -> str | None:
    """Absolute, symlink-resolved path of the `node` binary, or None if this host has none."""
    found = shutil.which("node", path=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    return os.path.realpath(found) if found else None


def find_prlimit() -> str | None:
    """Absolute path of util-linux `prlimit`, or None: only system directories are searched, as
    it runs ahead of every guest."""
    found = shutil.which("prlimit", path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return os.path.realpath(found) if found else None


def resolve_prlimit(choice: str | None) -> str | None:
    """A caller's prlimit choice as a path: "auto" looks it up on this host, None turns it off,
    anything else is taken as the path."""
    return find_prlimit() if choice == "auto" else choice


def old_space_mb(memory_mb: int) -> int:
    """V8's old-space limit (--max-old-space-size) for a function of memory_mb."""
    return max(MIN_OLD_SPACE_MB, memory_mb - NODE_OVERHEAD_MB)


def data_limit_bytes(memory_mb: int) -> int:
    """RLIMIT_DATA for a function of memory_mb; also the most a V8 heap can commit, which bounds
    a serialised heap (snapshot_build.py caps a blob at it)."""
    return (memory_mb + DATA_HEADROOM_MB) * MB


def node_argv(node_path: str, prlimit: str | None, memory_mb: int,
              v8_flags: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The command line of a node process up to (not including) what it runs: the RLIMIT_DATA
    wrapper where `prlimit` is a path, then node with its heap flags and `v8_flags`."""
    argv = []
    if prlimit is not None:
        # prlimit sets the limit on itself and execs node: same pid, limit in force before
        # node's first instruction, inherited by anything the guest spawns.
        data = data_limit_bytes(memory_mb)
        argv = [prlimit, f"--data={data}:{data}", "--"]
    return argv + [
        node_path,
        f"--max-old-space-size={old_space_mb(memory_mb)}",
        f"--max-semi-space-size={SEMI_SPACE_MB}",
        *v8_flags,
    ]
