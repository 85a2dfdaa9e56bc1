"""Per-environment control groups, on cgroup v2 or v1: memory, CPU and pids limits, the OOM
counter, peak memory, and "kill everything in here".

One `CgroupSet` is one environment's group (v2: one directory; v1: one directory in each of
the memory, cpu, pids and freezer hierarchies). Environments live under a parent the runner owns:

* v2: `<our cgroup>/runner` when the server may delegate (it needs the memory, cpu and pids
  controllers in `cgroup.subtree_control`), or `$RUNNER_CGROUP_PARENT`.
* v1: `<controller mount>/<our cgroup in that controller>/runner`, i.e. nested under the
  server's own group, so whatever limits the host puts on the server still cover its guests.

Invariants:
* Limits are written BEFORE any process is moved in, so a process never runs in a group whose
  limits are not yet set.
* Processes are moved by pid (cgroup.procs takes a whole thread group), so a process that was
  started elsewhere (a zygote's forked child, a bwrap tree) can be placed after the fact; the
  caller moves every process of the tree while none of them runs guest code yet.
* `kill_all()` leaves no process behind even if the guest forks while we kill: v2 uses the
  atomic `cgroup.kill`; v1 freezes the group first (a frozen task cannot fork), SIGKILLs every
  member, then thaws so the kills are delivered.

Where the groups go (`Layout`, `detect`) and the file primitives below the `CgroupSet` are in
cgroup_hierarchy.py; they also serve groups that are not an environment's (the wasm runtime's
per-thread CPU lanes).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time

import psutil

from runner.confinement.cgroup_hierarchy import (
    CPU_PERIOD_US,
    CPU_QUOTA_MIN_US,
    Layout,
    read_text,
    remove_group,
    write_cfs_v1,
    write_value,
)
from runner.confinement.stale import dead_owner_entries

log = logging.getLogger(__name__)

_seq = itertools.count(1)


def sweep(layout: Layout) -> int:
    """Remove groups left by runner processes that died without cleaning up (SIGKILL, a crash):
    `env-<pid>-<n>` whose creator pid is gone. Anything still inside is killed first: it
    belonged to a dead server and no one can reach it any more. Returns how many were removed."""
    removed = 0
    names: set[str] = set()
    for parent in layout.parents.values():  # v1: the same name in every controller's parent
        names.update(dead_owner_entries(parent, "env-"))
    for name in sorted(names):
        CgroupSet(layout, name).close(timeout=0.5)
        removed += 1
    return removed


class CgroupSet:
    """One environment's group(s). Create with `create()`; `close()` removes them."""

    def __init__(self, layout: Layout, name: str) -> None:
        self.layout = layout
        self.name = name
        self.dirs = {c: os.path.join(p, name) for c, p in layout.parents.items()}
        # Counter files read after every invocation (peak memory, pids events) stay open and
        # are re-read with pread at offset 0: cgroup files regenerate their text on each read
        # from the start, and this saves an open+close per file on the invoke path.
        self._fds: dict[tuple[str, str], int] = {}

    @classmethod
    def create(cls, layout: Layout, memory_bytes: int, cpu_fraction: float | None,
               pids: int) -> "CgroupSet":
        """New groups with these limits; `cpu_fraction` None leaves the CPU unlimited until
        set_cpu() (a runtime's start-up runs at full speed, as it did before it was moved)."""
        cg = cls(layout, f"env-{os.getpid()}-{next(_seq)}")
        try:
            for d in cg.dirs.values():
                os.mkdir(d)
            cg._set_limits(memory_bytes, cpu_fraction, pids)
        except BaseException:
            cg.close()
            raise
        return cg

    def _file(self, controller: str, name: str) -> str:
        return os.path.join(self.dirs["" if self.layout.version == 2 else controller], name)

    def set_cpu(self, cpu_fraction: float) -> None:
        """CPU quota = `cpu_fraction` of one CPU per CPU_PERIOD_US. A write to the group's own
        file: takes effect at once for every process in it, no migration involved."""
        quota = max(CPU_QUOTA_MIN_US, int(CPU_PERIOD_US * cpu_fraction))
        if self.layout.version == 2:
            write_value(self._file("cpu", "cpu.max"), f"{quota} {CPU_PERIOD_US}")
            return
        quota_fd = os.open(self._file("cpu", "cpu.cfs_quota_us"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            period_fd = os.open(self._file("cpu", "cpu.cfs_period_us"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                write_cfs_v1(quota_fd, period_fd, CPU_PERIOD_US, quota)
            finally:
                os.close(period_fd)
        finally:
            os.close(quota_fd)

    def _set_limits(self, memory_bytes: int, cpu_fraction: float | None, pids: int) -> None:
        if cpu_fraction is not None:
            self.set_cpu(cpu_fraction)
        if self.layout.version == 2:
            write_value(self._file("memory", "memory.max"), str(memory_bytes))
            write_value(self._file("memory", "memory.swap.max"), "0")
            write_value(self._file("pids", "pids.max"), str(pids))
            return
        write_value(self._file("memory", "memory.limit_in_bytes"), str(memory_bytes))
        # memsw (memory+swap) equal to the memory limit means zero swap; absent when the kernel
        # was built without swap accounting, and then swappiness 0 is the best we can do.
        memsw = self._file("memory", "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            write_value(memsw, str(memory_bytes))
        write_value(self._file("memory", "memory.swappiness"), "0")
        write_value(self._file("pids", "pids.max"), str(pids))

    def set_memory(self, memory_bytes: int) -> None:
        """Change the memory hard limit (swap stays off). A limit under the group's current
        usage makes the kernel reclaim, then OOM-kill inside the group: callers only raise it."""
        if self.layout.version == 2:
            write_value(self._file("memory", "memory.max"), str(memory_bytes))
            return
        # v1 refuses memory.limit_in_bytes above memory.memsw.limit_in_bytes (EINVAL), and
        # memsw below the limit: raise memsw first, lower it last.
        limit = self._file("memory", "memory.limit_in_bytes")
        memsw = self._file("memory", "memory.memsw.limit_in_bytes")
        writes = [(limit, memory_bytes)]
        if os.path.exists(memsw):
            raising = memory_bytes > int(read_text(limit))
            writes = [(memsw, memory_bytes), *writes] if raising else [*writes, (memsw, memory_bytes)]
        for path, value in writes:
            write_value(path, str(value))

    def memory_limit(self) -> int:
        """The memory hard limit in bytes (v2's "max" as a very large number)."""
        if self.layout.version == 2:
            raw = read_text(self._file("memory", "memory.max")).strip()
            return 1 << 62 if raw == "max" else int(raw)
        return int(read_text(self._file("memory", "memory.limit_in_bytes")))

    def add(self, pid: int) -> None:
        """Move `pid` (its whole thread group) into every controller's group."""
        for d in self.dirs.values():
            write_value(os.path.join(d, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        d = self.dirs["" if self.layout.version == 2 else "pids"]
        try:
            return [int(p) for p in read_text(os.path.join(d, "cgroup.procs")).split()]
        except OSError:
            return []

    # ------------------------------------------------------------------ counters

    def _counter(self, controller: str, name: str) -> str:
        fd = self._fds.get((controller, name))
        if fd is None:
            fd = os.open(self._file(controller, name), os.O_RDONLY | os.O_CLOEXEC)
            self._fds[(controller, name)] = fd
        return os.pread(fd, 65536, 0).decode()

    def _kv(self, controller: str, name: str) -> dict[str, int]:
        try:
            text = self._counter(controller, name)
        except OSError:
            return {}
        return _parse_kv(text)

    def _int(self, controller: str, name: str) -> int:
        try:
            return int(self._counter(controller, name).split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this group for exceeding its memory limit."""
        if self.layout.version == 2:
            return self._kv("memory", "memory.events").get("oom_kill", 0)
        ctl = self._kv("memory", "memory.oom_control")
        if "oom_kill" in ctl:
            return ctl["oom_kill"]
        # Kernels before 4.13 have no oom_kill counter; failcnt counts hits of the limit, the
        # closest signal they offer (a hit that reclaim absorbed also counts).
        return self._int("memory", "memory.failcnt")

    def peak_memory(self) -> int:
        if self.layout.version == 2:
            return self._int("memory", "memory.peak")
        return self._int("memory", "memory.max_usage_in_bytes")

    def current_memory(self) -> int:
        name = "memory.current" if self.layout.version == 2 else "memory.usage_in_bytes"
        return self._int("memory", name)

    def pids_limit_hits(self) -> int:
        """How many forks the pids limit refused (a fork bomb reached its ceiling). Read after
        every invocation: the file's usual text, the one line "max N", is taken apart directly."""
        try:
            text = self._counter("pids", "pids.events")
        except OSError:
            return 0
        parts = text.split()
        if len(parts) == 2 and parts[0] == "max" and parts[1].isdigit():
            return int(parts[1])
        return _parse_kv(text).get("max", 0)

    def cpu_throttled_us(self) -> int:
        stat = self._kv("cpu", "cpu.stat")
        if self.layout.version == 2:
            return stat.get("throttled_usec", 0)
        return stat.get("throttled_time", 0) // 1000

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the group's processes alive now: what the freezer's
        test and benchmark read (v1's cpuacct is a hierarchy of its own, not in the layout)."""
        total = 0.0
        for pid in self.pids():
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
        return total

    # ------------------------------------------------------------------ freezing

    def freeze(self) -> None:
        """Stop every process of the group where it stands, as Lambda freezes an idle
        environment: no CPU until thaw(), memory and descriptors kept. The kernel completes
        it in the background (v1 passes through FREEZING), so this returns at once. Safe for
        the guest: a frozen task is only parked in the kernel, as if descheduled; signals
        other than SIGKILL wait, and SIGKILL is handled by thaw-then-kill (kill_all, and the
        environments' destroy, thaw first)."""
        self._freezer_write(True)

    def thaw(self) -> None:
        """Let the group's processes run again (immediate: they were parked, not stopped)."""
        self._freezer_write(False)

    def _freezer_write(self, frozen: bool) -> None:
        # One descriptor per group, opened on first use and kept: freeze and thaw sit on the
        # warm path (after one invocation, before the next), where an open() would cost more
        # than the write itself.
        fd = self._fds.get(("freezer", "w"))
        if fd is None:
            path = (self._file("", "cgroup.freeze") if self.layout.version == 2
                    else self._file("freezer", "freezer.state"))
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            self._fds[("freezer", "w")] = fd
        if self.layout.version == 2:
            os.write(fd, b"1" if frozen else b"0")
        else:
            os.write(fd, b"FROZEN" if frozen else b"THAWED")

    # ------------------------------------------------------------------ teardown

    def kill_all(self) -> None:
        """SIGKILL every process in the group, including ones that setsid()'d or forked."""
        if self.layout.version == 2:
            kill = self._file("", "cgroup.kill")
            if os.path.exists(kill):
                write_value(kill, "1")
                return
            self._freeze_kill(self._file("", "cgroup.freeze"), "1", "0")
            return
        self._freeze_kill(self._file("freezer", "freezer.state"), "FROZEN", "THAWED")

    def _freeze_kill(self, state_file: str, frozen: str, thawed: str) -> None:
        # Freeze so nothing can fork between reading cgroup.procs and the kills; SIGKILL is
        # queued on frozen tasks and delivered when thawed. Killing a pid read from our own
        # group is safe: the group is frozen, so the pid cannot exit and be reused meanwhile.
        froze = False
        try:
            write_value(state_file, frozen)
            froze = True
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and frozen not in read_text(state_file):
                time.sleep(0.002)
        except OSError:
            pass  # no freezer: kill in rounds below, which still converges for a pids-limited group
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if froze:
                break
        if froze:
            try:
                write_value(state_file, thawed)
            except OSError:
                pass

    def close(self, timeout: float = 2.0) -> None:
        """Kill what is left and remove the group(s). Never raises; logs what it could not do."""
        for fd in self._fds.values():  # open counter files would keep the groups busy
            os.close(fd)
        self._fds.clear()
        try:
            if self.pids():
                self.kill_all()
        except OSError as exc:
            log.warning("could not kill the processes of %s: %s", self.name, exc)
        deadline = time.monotonic() + timeout
        for d in self.dirs.values():
            # EBUSY until the killed processes have been reaped by their parents.
            remove_group(d, max(0.0, deadline - time.monotonic()))


def _parse_kv(text: str) -> dict[str, int]:
    """A flat-keyed cgroup file ("key value" per line) as a dict; other lines skipped."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out
