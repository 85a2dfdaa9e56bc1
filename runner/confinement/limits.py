"""Resource limits for subprocess environments: what is enforced, and how.

`LimitSpec` says what one environment may use; `apply(pid, spec)` enforces it on a process tree
that has started but not yet run guest code (the bootstrap waits for the host's `init` frame, so
the limits are always in place before the first user instruction), and returns an
`Enforcement` handle the environment keeps for its lifetime. Sandboxed runtimes are placed
earlier still, while bwrap holds them before their exec (isolation.Gate, decision 039), with
the CPU quota left for `Enforcement.limit_cpu()` at their hello.

Two layers:
* cgroups (cgroups.py, v2 or v1): memory hard limit with swap off, CPU quota proportional to
  memory, pids limit, the OOM counter, peak memory, and kill-everything on release.
* rlimits, always (set from the host with prlimit(2), never from a preexec_fn: the server is
  multi-threaded and fork+exec must stay async-signal-safe): no core dumps, 1024 fds, file size
  capped at the /tmp size; RLIMIT_AS stands in for the memory limit only where no cgroup does
  (it breaks runtimes that reserve address space, and the cgroup limit is the real one).

`apply` works on any pid and all its descendants, so the wrapper processes of isolation.py
(bwrap) and a zygote's forked child are placed the same way.

Set RUNNER_CGROUPS=off to force the rlimit-only fallback (tests and benchmarks use it).
"""

from __future__ import annotations

import functools
import logging
import os
import resource
from dataclasses import dataclass

import psutil

from runner import settings
from runner.confinement import cgroup_hierarchy, cgroups
from runner.errors import CgroupUnavailable
from runner.model import MB, MB_PER_VCPU, FunctionVersion

log = logging.getLogger(__name__)

# Address-space headroom over the configured memory for an interpreter's own mappings (shared
# libraries, thread stacks, arenas reserved but never touched). Measured: CPython 3.11 -I -S maps
# ~25 MB of address space before running any guest code.
AS_HEADROOM_BYTES = 64 * MB
NOFILE = 1024  # Lambda's limit on file descriptors
PIDS = 1024  # Lambda's limit on processes/threads


@dataclass(frozen=True)
class LimitSpec:
    memory_bytes: int
    cpu_fraction: float  # of one CPU, already capped at the host's cores
    pids: int = PIDS
    tmp_bytes: int = 512 * MB
    address_space: bool = True  # RLIMIT_AS breaks V8: the Node runtime turns this off
    network_policy: str = "none"  # egress.effective(): opened at the gate (egress.attach)

    @classmethod
    def for_version(cls, version: FunctionVersion, *, address_space: bool = True) -> "LimitSpec":
        cfg = version.config
        return cls(
            memory_bytes=cfg.memory_mb * MB,
            cpu_fraction=min(cfg.memory_mb / MB_PER_VCPU, float(os.cpu_count() or 1)),
            tmp_bytes=cfg.ephemeral_storage_mb * MB,
            address_space=address_space,
            network_policy=cfg.network_policy or ("host" if cfg.network else "none"),
        )


@functools.lru_cache(maxsize=1)
def cgroup_layout() -> cgroup_hierarchy.Layout | None:
    """This host's cgroup layout for environments, or None (the reason is logged by doctor)."""
    if not settings.current().cgroups:
        return None
    try:
        layout = cgroup_hierarchy.detect()
    except (CgroupUnavailable, OSError) as exc:
        log.debug("cgroups unavailable: %s", exc)
        return None
    n = cgroups.sweep(layout)
    if n:
        log.info("removed %d cgroups left behind by runner processes that no longer exist", n)
    return layout


def cgroup_problem() -> str | None:
    """Why cgroups are off on this host, or None when they work."""
    if not settings.current().cgroups:
        return "disabled by RUNNER_CGROUPS=off"
    try:
        cgroup_hierarchy.detect()
        return None
    except (CgroupUnavailable, OSError) as exc:
        return str(exc)


class Enforcement:
    """The limits in force on one environment."""

    def __init__(self, pid: int, spec: LimitSpec, group: cgroups.CgroupSet | None) -> None:
        self.pid = pid
        self.spec = spec
        self.group = group
        self.kind = f"cgroup-v{group.layout.version}" if group else "rlimit"

    def limit_cpu(self) -> None:
        """Put the CPU quota in place (after apply(..., cpu_later=True)); again is harmless."""
        if self.group is not None:
            self.group.set_cpu(self.spec.cpu_fraction)

    def widen_cpu(self, cpu_fraction: float) -> None:
        """Raise the CPU quota to `cpu_fraction` of a CPU (never lowers it below the spec's).
        For a zygote once its init is done (zygote_process.py, issue 17 item 7): it then runs
        only its fork loop, but a fork of a big interpreter and the child's code before its
        hello (still in the zygote's group) are CPU work that every cold start of the
        version waits for. At the function's share (7% of a CPU at 128 MB) a busy host
        throttled the zygote for most of each 20 ms period, forks queued behind one another
        and 1 s timeouts were reported seconds late. The children are moved into groups of
        their own (with the function's share) at their hello, so guest code never runs with
        the zygote's quota except at-fork hooks its init registered, bounded by this quota."""
        if self.group is not None:
            self.group.set_cpu(max(cpu_fraction, self.spec.cpu_fraction))

    def boost_cpu(self, cpus: float) -> None:
        """Raise the CPU quota to at least `cpus` (capped at the host's cores) until the next
        limit_cpu(): the init boost (process/launch.py: run_init). Never lowers the quota."""
        if self.group is not None:
            self.group.set_cpu(max(self.spec.cpu_fraction,
                                   min(cpus, float(os.cpu_count() or 1))))

    def raise_memory_limit(self, memory_bytes: int) -> bool:
        """Raise the cgroup's memory limit to `memory_bytes` (never lowers it). False where no
        cgroup holds the limit: RLIMIT_AS is per process, so what a zygote needs this for
        (pages its children inherit, charged to its group) does not arise there."""
        if self.group is None:
            return False
        if memory_bytes > self.group.memory_limit():
            self.group.set_memory(memory_bytes)
        return True

    def oom_killed(self) -> bool:
        """True if the kernel killed a process of the environment for exceeding its memory
        limit, read from the cgroup's OOM counter (never guessed from an exit signal)."""
        return bool(self.group and self.group.oom_kills() > 0)

    def max_memory_bytes(self) -> int:
        """Peak memory of the environment as the cgroup saw it; 0 if unknown (rlimit-only)."""
        return self.group.peak_memory() if self.group else 0

    def memory_bytes(self) -> int:
        """Current memory charged to the environment; 0 if unknown."""
        return self.group.current_memory() if self.group else 0

    def pids_limit_hit(self) -> bool:
        """True once the pids limit refused a fork: the guest's process tree is not what its
        code expects any more, so the environment must not be reused."""
        return bool(self.group and self.group.pids_limit_hits() > 0)

    def freeze(self) -> bool:
        """Freeze the environment's processes (cgroups.CgroupSet.freeze); False where no
        cgroup holds them (rlimit-only hosts): there is nothing to freeze them with."""
        if self.group is None:
            return False
        self.group.freeze()
        return True

    def thaw(self) -> None:
        if self.group is not None:
            self.group.thaw()

    def kill_all(self) -> None:
        if self.group is not None:
            self.group.kill_all()

    def on_release(self, close) -> None:
        """Run `close()` (which must not raise) at release: what else the sandbox holds (its
        network relay, confinement/egress.py)."""
        self._on_release = [*getattr(self, "_on_release", []), close]

    def release(self) -> None:
        """Kill anything left (a daemonised grandchild) and remove the cgroups. Never raises."""
        for close in getattr(self, "_on_release", []):
            close()
        self._on_release = []
        group, self.group = self.group, None
        if group is not None:
            group.close()


def _children(pid: int) -> list[int]:
    """Direct children, from /proc/<pid>/task/<tid>/children (no scan of all of /proc)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def _tree(pid: int) -> tuple[list[int], list[int]]:
    """(every pid of the tree rooted at `pid`, its leaves)."""
    every, leaves, todo = [], [], [pid]
    while todo:
        p = todo.pop()
        every.append(p)
        kids = _children(p)
        if not kids:
            leaves.append(p)
        todo += kids
    return every, leaves


def raise_host_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit now.

    Each environment holds about four of the host's descriptors (its socket, its log pipe, the
    cgroup counter files kept open), so the usual soft limit of 1024 ran out at ~250
    environments (below the default max_environments, and the gRPC server needs its own),
    failing a cold start with a raw EMFILE. Raising the soft limit up to the hard one needs no
    privilege and changes only this process: guests get RLIMIT_NOFILE = NOFILE explicitly
    (apply, below), whatever the host has."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20  # the kernel's default nr_open
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # e.g. a kernel nr_open below the hard limit
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, target, exc)
    return soft


def apply(pid: int, spec: LimitSpec, *, cpu_later: bool = False) -> Enforcement:
    """Enforce `spec` on `pid` and its descendants before any of them runs guest code.

    `cpu_later`: leave the CPU unlimited until `Enforcement.limit_cpu()`. For a sandbox placed
    before its runtime starts (isolation.Gate): the memory and pids limits then cover the
    runtime's start-up, which still runs at full speed, as it did before it was moved.

    Safe because the tree is quiescent: the caller invokes this while the guest blocks on its
    socket waiting for `init`, or while bwrap holds the sandbox before the runtime's exec
    (isolation.Gate), and a wrapper like bwrap only waits on its child; so no process forks
    between listing the tree and moving it, and children forked later inherit the group and
    the rlimits.
    """
    layout = cgroup_layout()
    group = None
    every, leaves = _tree(pid)
    if layout is not None:
        group = cgroups.CgroupSet.create(layout, spec.memory_bytes,
                                         None if cpu_later else spec.cpu_fraction, spec.pids)
        try:
            # Only the leaves move: the processes above them are wrappers (bwrap and its PID
            # namespace init) that only wait on their child, run no guest code and sit outside
            # the guest's reach, while each cgroup migration costs an RCU grace period (~0.5 ms
            # per process and hierarchy). Whatever the leaves fork inherits their group.
            for p in leaves:
                try:
                    group.add(p)
                except ProcessLookupError:
                    pass  # exited already; nothing of it can run guest code
        except BaseException:
            group.close()
            raise
    for p in every:
        try:
            _set_rlimits(psutil.Process(p), spec,
                         address_space=spec.address_space and group is None)
        except psutil.NoSuchProcess:
            pass
    return Enforcement(pid, spec, group)


def confine(pid: int, spec: LimitSpec) -> Enforcement:
    """The cgroup part of `spec` for a tree that may still be forking when this is called (a
    Node snapshot build: its shell forks node later, while `apply` assumes only leaves fork).
    Every member moves, then the tree is listed again until a listing finds nothing new: a
    process forked after its parent moved inherits the group, and one forked before shows up
    in the next listing (an orphan is reparented to the namespace's init, inside the tree).
    Only the cgroup: the tree's rlimits are whatever its command line set (isolation.wrap's
    prlimit(1) in root mode, node.py's RLIMIT_DATA). Without cgroups this is a no-op."""
    layout = cgroup_layout()
    if layout is None:
        return Enforcement(pid, spec, None)
    group = cgroups.CgroupSet.create(layout, spec.memory_bytes, spec.cpu_fraction, spec.pids)
    moved: set[int] = set()
    try:
        while True:
            new = [p for p in _tree(pid)[0] if p not in moved]
            if not new:
                break
            for p in new:
                try:
                    group.add(p)
                except ProcessLookupError:
                    pass
                moved.add(p)
    except BaseException:
        group.close()
        raise
    return Enforcement(pid, spec, group)


def rlimits(spec: LimitSpec, *, address_space: bool) -> dict[int, int]:
    """The rlimits (soft = hard) an environment runs with."""
    out = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: NOFILE,
        resource.RLIMIT_FSIZE: spec.tmp_bytes,
    }
    if address_space:
        out[resource.RLIMIT_AS] = spec.memory_bytes + AS_HEADROOM_BYTES
    return out


# /proc/<pid>/limits row names, for verifying limits we may not set ourselves.
_PROC_LIMIT_NAMES = {
    resource.RLIMIT_CORE: "Max core file size",
    resource.RLIMIT_NOFILE: "Max open files",
    resource.RLIMIT_FSIZE: "Max file size",
    resource.RLIMIT_AS: "Max address space",
}


def _set_rlimits(proc: psutil.Process, spec: LimitSpec, *, address_space: bool) -> None:
    # prlimit on another process: safe while it blocks (see apply); its children inherit them.
    # Hard and soft are equal: a guest without CAP_SYS_RESOURCE can only lower them.
    for which, value in rlimits(spec, address_space=address_space).items():
        try:
            proc.rlimit(which, (value, value))
        except psutil.AccessDenied:
            # prlimit(2) on a process of another uid needs CAP_SYS_RESOURCE, which some hosts
            # (containers) withhold even from root. isolation.py then sets the same limits with
            # prlimit(1) before dropping to the guest uid; verify they are in force.
            _verify_rlimit(proc.pid, which, value)


def _verify_rlimit(pid: int, which: int, value: int) -> None:
    name = _PROC_LIMIT_NAMES[which]
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                fields = line[len(name):].split()
                if all(x != "unlimited" and int(x) <= value for x in fields[:2]):
                    return
                break
    raise RuntimeError(
        f"rlimit {name!r} of guest pid {pid} is not <= {value} and cannot be set without "
        "CAP_SYS_RESOURCE; give the server CAP_SYS_RESOURCE or make cgroups available"
    )
