"""Resource limits for subprocess environments: what is enforced, and how.

`LimitSpec` says what one environment may use; `apply()` enforces it on a process that has
started but not yet run guest code (the bootstrap waits for the host's `init` frame, so the
limits are always in place before the first user instruction). It returns an `Enforcement`
handle the environment keeps for its lifetime.

This first cut enforces with rlimits only (set from the host with prlimit(2), never from a
preexec_fn: the server is multi-threaded and fork+exec must stay async-signal-safe).
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

import psutil

from runner.model import MB_PER_VCPU, FunctionVersion

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Address-space headroom over the configured memory for an interpreter's own mappings (shared
# libraries, thread stacks, arenas reserved but never touched). Measured: CPython 3.11 -I -S maps
# ~25 MB of address space before running any guest code.
AS_HEADROOM_BYTES = 64 * MB
NOFILE = 1024  # Lambda's limit on file descriptors


@dataclass(frozen=True)
class LimitSpec:
    memory_bytes: int
    cpu_fraction: float  # of one CPU
    pids: int = 1024  # Lambda's limit on processes/threads
    tmp_bytes: int = 512 * MB
    address_space: bool = True  # RLIMIT_AS breaks V8: the Node runtime turns this off

    @classmethod
    def for_version(cls, version: FunctionVersion, *, address_space: bool = True) -> "LimitSpec":
        cfg = version.config
        return cls(
            memory_bytes=cfg.memory_mb * MB,
            cpu_fraction=cfg.memory_mb / MB_PER_VCPU,
            tmp_bytes=cfg.ephemeral_storage_mb * MB,
            address_space=address_space,
        )


class Enforcement:
    """The limits in force on one environment. Rlimit-only: no OOM counter, no CPU quota."""

    kind = "rlimit"

    def __init__(self, pid: int, spec: LimitSpec) -> None:
        self.pid = pid
        self.spec = spec

    def oom_killed(self) -> bool:
        """True if the kernel killed the environment for exceeding its memory limit."""
        return False

    def max_memory_bytes(self) -> int:
        """Peak memory of the environment as the enforcement mechanism saw it; 0 if unknown."""
        return 0

    def release(self) -> None:
        """Undo what apply() created (cgroups); the processes are already dead."""


def apply(pid: int, spec: LimitSpec) -> Enforcement:
    """Enforce `spec` on `pid` before it runs guest code."""
    proc = psutil.Process(pid)
    # prlimit on another process: safe while it blocks on its socket waiting for `init`; its
    # children (none yet) inherit the limits.
    if spec.address_space:
        limit = spec.memory_bytes + AS_HEADROOM_BYTES
        proc.rlimit(resource.RLIMIT_AS, (limit, limit))
    proc.rlimit(resource.RLIMIT_CORE, (0, 0))
    proc.rlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    proc.rlimit(resource.RLIMIT_FSIZE, (spec.tmp_bytes, spec.tmp_bytes))
    return Enforcement(pid, spec)
