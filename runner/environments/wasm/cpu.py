"""CPU share for WebAssembly guests: each environment's guest thread lives in its own cgroup.

WebAssembly guests run inside the server process, so a per-process mechanism (a cgroup holding
the guest's process, as for Python) cannot apply. Instead each environment gets a cgroup with a
CFS quota of memory_mb/1769 of a CPU and one dedicated thread (`GuestThread`) that moves itself
into that group once and then runs every guest call of the environment; invoke() hands calls
to it. The kernel throttles that thread like any process in the group.

Why a dedicated thread rather than moving the invoking thread in and out per call: a cgroup v1
migration usually costs ~35 us but 5-15 ms right after the thread was throttled (measured
here), which would land in the invocation's latency. See docs/decisions/024-wasm-cpu-share.md.

Per-thread placement needs the cgroup v1 `cpu` controller (v1 lets any thread join any group
via `tasks`; v2 only within a "threaded" subtree the process must move into as a whole). Where
it is unavailable (no v1 cpu hierarchy, not root) `CpuShares.available` is False and guests
run unthrottled; the backend logs that once and reports it in `WasmBackend.cpu_enforcement`.

The cgroup file handling is the confinement layer's (runner/confinement/cgroup_hierarchy.py: finding
our own v1 group, writing the CFS pair, removing groups) and so is the start-up sweep of lanes
left by a runner process that died (runner/confinement/stale.py). What is specific here is the
placement of one thread, not a process, and the short CFS period.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading

from runner.confinement import cgroup_hierarchy
from runner.confinement.stale import dead_owner_entries
from runner.environments.process import teardown
from runner.errors import CgroupUnavailable

log = logging.getLogger(__name__)

# CFS period: short, because a thread that spent its quota sleeps until the period ends, and a
# guest past its deadline must wake to see the epoch trap. 10 ms (half the period of process
# guests' groups, cgroup_hierarchy.CPU_PERIOD_US), stretched for small shares so the quota stays at the
# kernel's 1 ms minimum (128 MB = 0.072 CPU -> 1 ms per 13.8 ms).
MIN_PERIOD_US = 10_000
MIN_QUOTA_US = cgroup_hierarchy.CPU_QUOTA_MIN_US
GROUP_PREFIX = "runner-wasm-"  # + "<pid>-<n>" under our own v1 cpu group (stale.py: the pid)


def cfs_period_quota(cpus: float) -> tuple[int, int]:
    period = max(MIN_PERIOD_US, int(round(MIN_QUOTA_US / cpus)))
    return period, max(MIN_QUOTA_US, int(round(cpus * period)))


SPARES = 4  # lanes kept ready for cold starts
LANE_DRAIN_S = 10.0  # above one lane's close: its thread's join (5 s) and the group's rmdir
_instances = itertools.count(1)


class CpuShares:
    """Hands out `Lane`s (a cgroup + its guest thread) under `<own cgroup>/runner-wasm-<pid>-<n>/`,
    one per live environment."""

    def __init__(self, root: str = cgroup_hierarchy.CGROUP_ROOT) -> None:
        self.available = False
        self.reason = ""
        self._home_tasks: str | None = None
        self._dir: str | None = None
        self._cond = threading.Condition()
        self._spares: list[Lane] = []
        self._seq = 0
        self._filler: threading.Thread | None = None
        try:
            # Threads return here after a guest call (GuestThread leaves, lanes evict).
            home = cgroup_hierarchy.v1_own_group("cpu", root)
        except (CgroupUnavailable, OSError) as exc:
            self.reason = f"cgroup v1: {exc}"
            return
        for name in dead_owner_entries(home, GROUP_PREFIX):
            cgroup_hierarchy.remove_tree(os.path.join(home, name))
        # One directory per backend: several backends may live in one process (tests, benches).
        parent = os.path.join(home, f"{GROUP_PREFIX}{os.getpid()}-{next(_instances)}")
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            self.reason = f"cannot create {parent}: {exc.strerror}"
            return
        self._home_tasks = os.path.join(home, "tasks")
        self._dir = parent
        self.available = True

    def acquire(self, cpus: float) -> "Lane | None":
        """A cgroup with `cpus` of quota and its guest thread already inside. Taken from the
        spares the filler thread keeps ready, because joining a cgroup costs 0.1-15 ms (cgroup
        v1 migration), too slow for a cold start; created on the spot only if none is left."""
        if not self.available:
            return None
        with self._cond:
            self._start_filler()
            lane = self._spares.pop() if self._spares else None
            self._cond.notify_all()  # wake the filler
        if lane is None:
            lane = self._new_lane()
            if lane is None:
                return None
        lane.group.set_share(cpus)
        return lane

    def warm_up(self) -> None:
        """Start keeping spare lanes (the backend calls this when a wasm version is prepared,
        so the first cold start finds one ready). A server without wasm functions keeps none."""
        with self._cond:
            self._start_filler()

    def _start_filler(self) -> None:
        if self._filler is None and self.available:
            self._filler = threading.Thread(target=self._fill, name="wasm-cpu-lanes", daemon=True)
            self._filler.start()

    def release(self, lane: "Lane") -> None:
        """Take back a lane whose environment is gone: recycled if idle, else torn down."""
        lane.group.evict_others(lane.thread.native_id)
        with self._cond:
            if (self.available and lane.thread.idle() and not lane.group.lifted
                    and len(self._spares) < SPARES):
                self._spares.append(lane)
                return
        # Off the caller's path (issue 17, item 7): closing joins the guest thread, whose exit
        # moves it out of the group (a v1 migration waits for an RCU grace period, 5-15 ms after
        # a throttle), and the rmdir retries until it is out. Under load that held a timed-out
        # call's result for seconds. Nothing else uses the lane: the environment let it go.
        teardown.submit(lane.close, "a wasm CPU lane")

    def _new_lane(self) -> "Lane | None":
        self._seq += 1
        path = os.path.join(self._dir, f"lane-{self._seq}")
        try:
            os.mkdir(path)
            group = CpuGroup(path, self._home_tasks)
        except OSError as exc:
            log.warning("wasm cpu share: cannot create %s (%s); running unthrottled", path, exc)
            cgroup_hierarchy.remove_group(path)
            return None
        return Lane(group, GuestThread(group, f"wasm-guest-{self._seq}"))

    def _fill(self) -> None:
        while True:
            with self._cond:
                while self.available and len(self._spares) >= SPARES:
                    self._cond.wait()
                if not self.available:
                    return
            lane = self._new_lane()
            if lane is None:
                return
            with self._cond:
                if self.available:
                    self._spares.append(lane)
                    continue
            lane.close()
            return

    def close(self) -> None:
        with self._cond:
            self.available = False
            spares, self._spares = self._spares, []
            self._cond.notify_all()
        if self._filler is not None:
            self._filler.join(timeout=5.0)
        for lane in spares:
            lane.close()
        teardown.drain(LANE_DRAIN_S)  # lanes released just before are closing in the background
        if self._dir is not None:
            # Lanes are empty by now (their threads left as their last act); an EBUSY here
            # means an enter/leave pairing bug, which remove_group logs.
            cgroup_hierarchy.remove_tree(self._dir)
            self._dir = None
        self.available = False


class CpuGroup:
    """One environment's cgroup; its only member is the environment's GuestThread (plus any
    helper thread wasmtime spawned from it, moved out by remove())."""

    def __init__(self, path: str, home_tasks: str) -> None:
        self.path = path
        self.period_s = MIN_PERIOD_US / 1e6
        self.quota_us = -1
        self.lifted = False
        self._tasks_fd = os.open(os.path.join(path, "tasks"), os.O_WRONLY)
        self._home_fd = os.open(home_tasks, os.O_WRONLY)
        self._quota_fd = os.open(os.path.join(path, "cpu.cfs_quota_us"), os.O_WRONLY)
        self._period_fd = os.open(os.path.join(path, "cpu.cfs_period_us"), os.O_WRONLY)

    def set_share(self, cpus: float) -> None:
        period, quota = cfs_period_quota(cpus)
        cgroup_hierarchy.write_cfs_v1(self._quota_fd, self._period_fd, period, quota)
        self.period_s, self.quota_us = period / 1e6, quota

    def evict_others(self, keep_tid: int) -> None:
        """Move every thread but `keep_tid` home. Threads a guest call spawned inherit the
        group (wasmtime's WASI runtime starts blocking-I/O threads lazily, from the calling
        thread); they serve every guest, so they must not stay charged to this one."""
        try:
            with open(os.path.join(self.path, "tasks"), encoding="ascii") as f:
                tids = f.read().split()
        except OSError:
            return
        for tid in tids:
            if int(tid) != keep_tid:
                try:
                    os.write(self._home_fd, tid.encode())
                except OSError:
                    pass  # the thread exited meanwhile

    def enter(self) -> None:
        """Move the calling thread into the group."""
        os.write(self._tasks_fd, str(threading.get_native_id()).encode())

    def leave(self) -> None:
        """Move the calling thread home (a guest thread does, as its last act, so the group is
        empty by the time join() returns: an exiting thread leaves its cgroup only later)."""
        os.write(self._home_fd, str(threading.get_native_id()).encode())

    def lift(self) -> None:
        """Remove the quota, from another thread (the ticker, at a deadline). Writing the quota
        unthrottles at once; moving the thread out instead takes 5-15 ms here (cgroup v1 migration
        waits for an RCU grace period)."""
        try:
            os.pwrite(self._quota_fd, cgroup_hierarchy.CFS_QUOTA_OFF, 0)
            self.lifted = True
        except OSError:
            pass  # the group was removed meanwhile

    def restore(self) -> None:
        """Put the quota back after a lifted call (once the ticker can no longer lift it)."""
        if self.lifted:
            self.lifted = False
            os.pwrite(self._quota_fd, str(self.quota_us).encode(), 0)

    def throttled(self) -> tuple[int, int]:
        """(periods throttled, total throttled ns) from cpu.stat."""
        stats = {}
        try:
            with open(os.path.join(self.path, "cpu.stat"), encoding="ascii") as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    stats[k] = int(v)
        except (OSError, ValueError):
            pass
        return stats.get("nr_throttled", 0), stats.get("throttled_time", 0)

    def remove(self) -> None:
        for fd in (self._tasks_fd, self._home_fd, self._quota_fd, self._period_fd):
            if fd >= 0:
                os.close(fd)
        self._tasks_fd = self._home_fd = self._quota_fd = self._period_fd = -1
        cgroup_hierarchy.remove_group(self.path)


class Lane:
    def __init__(self, group: CpuGroup, thread: "GuestThread") -> None:
        self.group = group
        self.thread = thread

    def close(self) -> None:
        self.thread.close()  # the thread exits, leaving the group
        self.group.evict_others(-1)
        self.group.remove()


class GuestThread:
    """A thread that joins `group` and then runs the calls handed to `call()`, one at a time.

    The caller blocks until its call finishes; exceptions travel back to it. close() ends the
    thread (after any call in progress), which also empties the group."""

    def __init__(self, group: CpuGroup, name: str) -> None:
        self._group = group
        self._cond = threading.Condition()
        self._job = None
        self._result = None
        self._done = False
        self._closed = False
        self._joined = threading.Event()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._joined.wait()
        self.native_id = self._thread.native_id

    def idle(self) -> bool:
        with self._cond:
            return not self._busy and self._job is None and not self._closed

    def call(self, fn, *args):
        with self._cond:
            if self._closed:
                raise RuntimeError("guest thread is closed")
            self._job, self._done = (fn, args), False
            self._cond.notify_all()
            while not self._done:
                self._cond.wait()
            ok, value = self._result
            self._result = None
        if ok:
            return value
        raise value

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        try:
            self._group.enter()
        except OSError as exc:
            log.warning("wasm cpu share: cannot join %s (%s); running unthrottled",
                        self._group.path, exc.strerror)
        self._joined.set()
        while True:
            with self._cond:
                while self._job is None and not self._closed:
                    self._cond.wait()
                if self._job is None:
                    break
                fn, args = self._job
                self._job, self._busy = None, True
            try:
                result = (True, fn(*args))
            except BaseException as exc:  # handed to the caller, which re-raises it
                result = (False, exc)
            with self._cond:
                self._result, self._done, self._busy = result, True, False
                self._cond.notify_all()
        try:
            self._group.leave()
        except OSError:
            pass  # the group's files are gone already; the kernel drops the thread at exit
