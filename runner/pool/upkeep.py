"""Keeping the pools healthy between invocations: the per-version records, the idle reaper
(idle environments after the idle TTL, then the backends' per-version state nothing uses after
the zygote TTL: decision 086), provisioned concurrency's replenishment, and relief under host
memory pressure.

Split from pool.py (leasing and releasing environments): `PoolManager` inherits these from
`PoolUpkeep`. The invariants of pool.py hold here too: the records change only under the
pool's lock, and environments are created and destroyed outside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import psutil

from runner.environments.base import ExecutionEnvironment, is_alive
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

REAPER_PERIOD_S = 1.0  # how often idle environments are checked against the TTL
MIN_REAPER_PERIOD_S = 0.02  # for the short TTLs of tests
# Under memory pressure (host memory available below this fraction), idle environments are
# destroyed least recently used first until it recovers: idle ones cost memory and no work.
MIN_AVAILABLE_FRACTION = 0.10


@dataclass(slots=True)
class Idle:
    env: ExecutionEnvironment
    since: float
    frozen: bool = False  # set by the IdleFreezer (freezer.py), under the pool's lock


@dataclass
class VersionPool:
    version: FunctionVersion
    idle: list[Idle] = field(default_factory=list)  # LIFO: the warmest environment on top
    busy: int = 0
    starting: int = 0
    live: bool = True  # False once retired: nothing returns to the idle list
    cold_starts: int = 0  # invocations that had to wait for an environment's init
    inits: int = 0  # environments initialised (cold starts + provisioned + replacements)
    invocations: int = 0
    replenishing: bool = False  # a background thread is creating provisioned environments
    # Invocations waiting for an environment whose start runs in the background (pool.py,
    # "Waiting for the first environment"): FIFO; never longer than `starting`.
    waiters: deque = field(default_factory=deque)
    background: int = 0  # of `starting`: the starts run for waiters, in threads of their own
    hold_s: float = 0.0  # how long a call holds an environment (EWMA; 0 until one returned)

    def note_hold(self, seconds: float) -> None:
        """A lease came back after `seconds` (waiters.py decides by it whether to wait)."""
        self.hold_s = seconds if not self.hold_s else 0.8 * self.hold_s + 0.2 * seconds

    @property
    def floor(self) -> int:
        """Environments kept initialised at all times (provisioned concurrency)."""
        return self.version.config.provisioned if self.live else 0


class PoolUpkeep:
    """The upkeep half of `PoolManager`, which supplies _lock, _pools, _closed, backends,
    idle_ttl_s, zygote_ttl_s, snapshots_reaped, max_environments, prepare(), backend(),
    _total_locked() and _lru_idle_locked()."""

    # ------------------------------------------------------------------ reaping

    def reap(self, now: float | None = None) -> int:
        """Destroy idle environments past the TTL or whose process died; returns how many."""
        now = time.monotonic() if now is None else now
        doomed = self._take_dead_idle()
        with self._lock:
            for key, vp in list(self._pools.items()):
                # Provisioned environments are exempt: keep the most recently used ones that
                # make up the floor, expire only the rest.
                protected = max(0, vp.floor - vp.busy - vp.starting)
                cut = max(0, len(vp.idle) - protected)
                expired = [i for i in vp.idle[:cut] if now - i.since >= self.idle_ttl_s]
                if expired:
                    vp.idle = [i for i in vp.idle if i not in expired]
                    doomed += [i.env for i in expired]
                if not vp.live and not (vp.busy or vp.starting):
                    del self._pools[key]
        for env in doomed:
            env.destroy()
        return len(doomed)

    def reap_snapshots(self, now: float | None = None) -> int:
        """Let each backend close the per-version state nothing has used for zygote_ttl_s
        (Backend.reap_idle, optional: the Python zygotes; decision 086); returns how many.
        After reap(), in the same pass: a version whose last environment the idle TTL just
        took can then lose its zygote at once. The backend decides what is still in use (its
        environments, spares and provisioned ones are children of the zygote it counts), so
        the pool names no runtime here."""
        closed = 0
        for backend in list(self.backends.values()):
            reap_idle = getattr(backend, "reap_idle", None)
            if reap_idle is not None:
                closed += reap_idle(self.zygote_ttl_s, now)
        if closed:
            with self._lock:
                self.snapshots_reaped += closed
        return closed

    def _take_dead_idle(self) -> list[ExecutionEnvironment]:
        """Remove from the idle lists the environments whose process is gone. The checks (a
        waitpid each) run outside the lock; an environment leased meanwhile is left alone (an
        invocation sent to a dead one is retried elsewhere: errors.EnvironmentGone)."""
        with self._lock:
            idle = [(vp, item) for vp in self._pools.values() for item in vp.idle]
        dead = [(vp, item) for vp, item in idle if not is_alive(item.env)]
        taken: list[ExecutionEnvironment] = []
        with self._lock:
            for vp, item in dead:
                if item in vp.idle:
                    vp.idle.remove(item)
                    taken.append(item.env)
        if taken:
            log.warning("dropped %d idle environment(s) whose process had exited", len(taken))
        return taken

    def _reap_loop(self) -> None:
        # Half the shortest TTL, so nothing outlives its TTL by more than half of it; never
        # below MIN_REAPER_PERIOD_S (a TTL of 0 would otherwise spin this thread).
        period = max(MIN_REAPER_PERIOD_S,
                     min(REAPER_PERIOD_S, self.idle_ttl_s / 2, self.zygote_ttl_s / 2))
        while not self._closed.wait(period):
            try:
                self.reap()
                self.reap_snapshots()
                self.relieve_memory_pressure()
                self._replenish_all()
            except Exception:  # the reaper must outlive any one bad environment
                log.exception("idle reaper failed")

    # ------------------------------------------------------------------ provisioned concurrency

    def provision(self, version: FunctionVersion, wait: bool = True) -> int:
        """Bring `version` up to its provisioned environments (config.provisioned); returns how
        many were created. With wait=False the work happens in a background thread."""
        if version.config.provisioned <= 0:
            return 0
        with self._lock:
            vp = self._pools.get(version.key)
            if vp is None:
                vp = self._pools[version.key] = VersionPool(version)
        if not wait:
            self._replenish_async(vp)
            return 0
        return self._replenish(vp)

    def _replenish(self, vp: VersionPool) -> int:
        created = 0
        while True:
            with self._lock:
                missing = vp.floor - (len(vp.idle) + vp.busy + vp.starting)
                if missing <= 0 or self._closed.is_set() or \
                        self._total_locked() >= self.max_environments:
                    return created
                vp.starting += 1
            env = None
            try:
                self.prepare(vp.version)
                env = self.backend(vp.version).create(vp.version)
                env.start()
            except Exception as exc:  # init keeps failing: the invocations will report it
                with self._lock:
                    vp.starting -= 1
                log.warning("provisioned environment for %s failed to start: %s", vp.version.key, exc)
                return created
            with self._lock:
                vp.starting -= 1
                vp.inits += 1
                if vp.live and not self._closed.is_set():
                    vp.idle.insert(0, Idle(env, time.monotonic()))
                    created += 1
                    continue
            env.destroy()
            return created

    def _replenish_async(self, vp: VersionPool) -> None:
        with self._lock:
            if vp.replenishing:
                return
            vp.replenishing = True

        def run() -> None:
            try:
                self._replenish(vp)
            finally:
                with self._lock:
                    vp.replenishing = False

        threading.Thread(target=run, name=f"provision-{vp.version.key}", daemon=True).start()

    def _replenish_all(self) -> None:
        """Replace provisioned environments lost to timeouts, crashes or OOM kills."""
        with self._lock:
            short = [vp for vp in self._pools.values()
                     if vp.floor and len(vp.idle) + vp.busy + vp.starting < vp.floor]
        for vp in short:
            self._replenish_async(vp)

    def memory_pressure(self) -> bool:
        """True while the host's available memory is below MIN_AVAILABLE_FRACTION."""
        vm = psutil.virtual_memory()
        return vm.available < vm.total * MIN_AVAILABLE_FRACTION

    def relieve_memory_pressure(self, limit: int = 64) -> int:
        """Destroy idle environments, least recently used first, while under pressure (at most
        `limit` per call so one pass never stalls the reaper). Returns how many."""
        evicted = 0
        while evicted < limit and self.memory_pressure():
            with self._lock:
                env = self._lru_idle_locked(exclude=None)
            if env is None:
                break
            env.destroy()
            evicted += 1
        if evicted:
            log.warning("memory pressure: destroyed %d idle environments", evicted)
        return evicted
