"""Per-version pools of execution environments, with concurrency limits and idle reaping.

Invariants (under `self._lock`):
* in total: idle + busy + starting <= max_environments (the host-wide limit); when full, the
  least recently used idle environment of *another* version is evicted to make room;
* an environment is in exactly one place: an idle list, or lent out (busy), or being created.
* for each version: busy + starting <= its concurrency; the calls in flight (busy, starts in
  the caller's thread, waiters) never exceed it either: past it a call is refused at once.
Environment creation (init) and destruction run outside the lock: they take milliseconds to
seconds and must not serialise unrelated functions.

A cold start runs in the caller's thread when nothing of its version is busy or starting, or
for runtimes whose start costs next to nothing (wasm). Otherwise (Backend.start_wait_s: Node.js,
Python) the call waits for the first environment to free up or finish starting (waiters.py,
decision 081).
"""

from __future__ import annotations

import logging
import threading
import time

from runner import settings
from runner.confinement import ksm
from runner.environments.base import Backend, ExecutionEnvironment
from runner.errors import FunctionError, InternalError, TooManyRequests
from runner.model import FunctionVersion
from runner.pool.base import InitFailure, Lease
from runner.pool.freezer import IdleFreezer
from runner.pool.prestart import PreStartPool
from runner.pool.upkeep import Idle, PoolUpkeep, VersionPool
from runner.pool.waiters import Waiter, WaitingStarts

log = logging.getLogger(__name__)

# Tuning constants.
DEFAULT_IDLE_TTL_S = 300.0  # Lambda keeps idle environments for minutes; 5 is a common middle
# Per-version snapshot processes (the Python zygote) with no environment left are closed after
# this long without a start (decision 086); None: the idle TTL, so that once the idle TTL has
# reaped a version's last environment nothing of it is left running.
DEFAULT_ZYGOTE_TTL_S: float | None = None
DEFAULT_MAX_ENVIRONMENTS = 256  # host-wide; ~256 x 20 MB Python environments = 5 GB


class PoolManager(PoolUpkeep, WaitingStarts):
    """The `EnvironmentPool` of base.py for all versions of all functions."""

    def __init__(
        self,
        backends: dict[str, Backend],
        *,
        idle_ttl_s: float = DEFAULT_IDLE_TTL_S,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        prestart: bool = True,
        freeze_idle: bool | None = None,
        zygote_ttl_s: float | None = DEFAULT_ZYGOTE_TTL_S,
    ) -> None:
        self.backends = backends
        # Idle environments are frozen a moment after they go idle (freezer.py);
        # RUNNER_FREEZE_IDLE=off keeps them running, for comparison.
        self.freeze_idle = settings.current().freeze_idle if freeze_idle is None else freeze_idle
        if settings.current().ksm:
            # RUNNER_KSM=on only marks memory mergeable; the host decides whether ksmd runs
            # (confinement/ksm.py). Say so once, at start-up, rather than silently save nothing.
            problem = ksm.host_problem()
            if problem is not None:
                log.warning("RUNNER_KSM=on has no effect: %s", problem)
        # Launched-not-initialised spares for runtimes that cannot fork (Node.js): a cold start
        # takes one when it can and only runs init (prestart.py).
        self.prestart = PreStartPool(backends) if prestart else None
        self.idle_ttl_s = idle_ttl_s
        self.zygote_ttl_s = idle_ttl_s if zygote_ttl_s is None else zygote_ttl_s
        self.snapshots_reaped = 0  # zygotes (or other backends' per-version state) closed idle
        self.max_environments = max_environments
        self._lock = threading.Lock()
        self._pools: dict[str, VersionPool] = {}
        self._prepared: dict[str, threading.Lock] = {}
        self._done_prepare: set[str] = set()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="pool-reaper", daemon=True)
        self._reaper.start()
        self._freezer = IdleFreezer(self._lock, self._idle_entries, self._closed,
                                    lambda: self.freeze_idle)
        self._freezer.start()

    # ------------------------------------------------------------------ backend access

    def backend(self, version: FunctionVersion) -> Backend:
        try:
            return self.backends[version.config.runtime]
        except KeyError:
            raise InternalError(
                f"runtime {version.config.runtime!r} is not available on this host "
                "(see `runner doctor`)"
            ) from None

    def prepare(self, version: FunctionVersion) -> None:
        """Run the backend's per-version preparation once (thread-safe, idempotent)."""
        if version.key in self._done_prepare:
            return
        with self._lock:
            lock = self._prepared.setdefault(version.key, threading.Lock())
        with lock:
            if version.key not in self._done_prepare:
                self.backend(version).prepare(version)
                self._done_prepare.add(version.key)

    def prewarm(self, version: FunctionVersion, wait: bool = True) -> None:
        """Get ready for the version's cold starts ahead of demand, so that even the first
        invocation of a fresh version skips start-up: the backend's snapshot (the Python
        zygote, which runs the init phase once) and, for runtimes that cannot fork (Node.js),
        one pre-started spare (prestart.py). An init failure is not raised: the invocation
        that needs the environment retries the init and reports its error, as Lambda does."""
        if self.closed:
            return
        self.prepare(version)
        if self.prestart is not None:
            self.prestart.prewarm(version, wait=wait)
        snapshot = getattr(self.backend(version), "prewarm", None)
        if snapshot is None:
            return
        try:
            snapshot(version)
        except Exception as exc:
            log.info("snapshot of %s not built at deploy: %s", version.key, exc)

    # ------------------------------------------------------------------ lease / release

    def acquire(self, version: FunctionVersion) -> Lease | InitFailure:
        """See EnvironmentPool.acquire (base.py)."""
        evicted: list[ExecutionEnvironment] = []
        with self._lock:
            if self._closed.is_set():
                raise InternalError("the pool is shut down")
            vp = self._pools.get(version.key)
            if vp is None:
                vp = self._pools[version.key] = VersionPool(version)
            vp.invocations += 1
            if vp.idle:
                env = vp.idle.pop().env
                vp.busy += 1
                return Lease(env, version, cold=False, slot=vp, since=time.monotonic())
            limit = version.config.concurrency
            # In flight: the busy ones, the starts callers wait on in their own thread, and
            # the waiters (each has a background start, or a released environment, coming).
            if vp.busy + (vp.starting - vp.background) + len(vp.waiters) >= limit:
                raise TooManyRequests(
                    f"Rate exceeded: function {version.name!r} is at its concurrency limit "
                    f"({limit}); retry later or deploy with a higher --concurrency"
                )
            # Inline: nothing could free up for this call, or a start costs about what waiting
            # would (a fork, an instantiation: measured, decision 081).
            wait_s = self._start_wait_s(version)
            inline = not (vp.busy or vp.starting) or not wait_s
            # A waiter adopts a background start that lost its own waiter to a released
            # environment; only a waiter without one needs another (waiters.py).
            start = inline or len(vp.waiters) >= vp.background
            # A waiter of a version whose calls are quick first waits a moment for one to
            # free up (waiters.py); the start, if still needed, comes after.
            deferred = not inline and start and vp.hold_s < wait_s
            start_now = start and not deferred
            if start_now:
                self._make_room_locked(vp, evicted)
                vp.starting += 1
            waiter = None
            if not inline:
                waiter = Waiter()
                vp.waiters.append(waiter)
                vp.background += start_now
        for env in evicted:
            env.destroy()
        if waiter is not None:
            return self._wait(vp, waiter, start=start_now, defer_s=wait_s if deferred else 0.0)
        try:
            made = self._create(version)
        except BaseException:
            with self._lock:
                vp.starting -= 1
            raise
        with self._lock:
            vp.starting -= 1
            if isinstance(made, InitFailure):
                return made
            vp.busy += 1
            vp.cold_starts += 1
            vp.inits += 1
        return Lease(made, version, cold=True, slot=vp, since=time.monotonic())

    def _create(self, version: FunctionVersion) -> ExecutionEnvironment | InitFailure:
        """Make and start one environment of `version` (outside the lock): a pre-started
        spare when there is one. The guest's init failure is returned, platform errors raised."""
        env = None
        try:
            self.prepare(version)
            env = self.prestart.take(version) if self.prestart is not None else None
            if env is None:
                env = self.backend(version).create(version)
            env.start()
        except FunctionError as exc:  # the guest's init failed: reported on the invocation
            if env is None:
                return InitFailure(exc, b"", None)
            return InitFailure(exc, env.init_logs, env.init_duration_ms)
        return env

    def _make_room_locked(self, vp: VersionPool, evicted: list) -> None:
        """Before a start: at the host limit, take the least recently used idle environment
        of another version into `evicted` (destroyed by the caller outside the lock), or
        refuse when there is none."""
        if self._total_locked() >= self.max_environments:
            victim = self._lru_idle_locked(exclude=vp)
            if victim is None:
                raise TooManyRequests(
                    f"Rate exceeded: the host runs its maximum of {self.max_environments} "
                    "environments; retry later or raise --max-environments"
                )
            evicted.append(victim)

    def release(self, lease: Lease, reusable: bool) -> None:
        waiter = None
        now = time.monotonic()
        with self._lock:
            vp = lease.slot if lease.slot is not None else self._pools.get(lease.version.key)
            keep = reusable and vp is not None and vp.live and not self._closed.is_set()
            if vp is not None:
                vp.busy -= 1
                vp.note_hold(now - lease.since)
            if keep and vp.waiters:  # straight to a waiting invocation, warm
                waiter = vp.waiters.popleft()
                vp.busy += 1
                waiter.result = Lease(lease.env, vp.version, cold=False, slot=vp, since=now)
            elif keep:
                vp.idle.append(Idle(lease.env, time.monotonic()))
                return
        if waiter is not None:
            waiter.done.set()
            return
        lease.env.destroy()

    def retire(self, version: FunctionVersion) -> None:
        idle: list[Idle] = []
        with self._lock:
            self._prepared.pop(version.key, None)
            self._done_prepare.discard(version.key)
            vp = self._pools.pop(version.key, None)
            if vp is not None:
                vp.live = False
                idle, vp.idle = vp.idle, []
                # Kept while invocations are in flight: their leases hold it (Lease.slot), and
                # the reaper drops it once they are back, so the host limit counts them until then.
                if vp.busy or vp.starting:
                    self._pools[f"retired:{version.key}:{id(vp)}"] = vp
        for item in idle:
            item.env.destroy()
        # Also for a version never invoked (no record): deploy built its zygote and spares.
        if self.prestart is not None:
            self.prestart.forget(version)
        self.backend(version).forget(version)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def stats(self) -> dict:
        with self._lock:
            per = {
                vp.version.key: {
                    "idle": len(vp.idle), "busy": vp.busy, "starting": vp.starting,
                    "cold_starts": vp.cold_starts, "inits": vp.inits,
                    "invocations": vp.invocations,
                }
                for vp in self._pools.values()
            }
            return {"versions": per, "total": self._total_locked(),
                    "snapshots_reaped": self.snapshots_reaped}

    def environment_counts(self) -> list[tuple[FunctionVersion, int, int, int]]:
        """(version, idle, busy, starting) of every live version pool: what the metrics
        layer's gauges read at scrape time (runner/metrics/host.py)."""
        with self._lock:
            return [(vp.version, len(vp.idle), vp.busy, vp.starting)
                    for vp in self._pools.values()]

    def _idle_entries(self):
        """Every idle entry with its version pool (the caller holds the lock)."""
        for vp in self._pools.values():
            for idle in vp.idle:
                yield vp, idle

    def idle_environments(self, version: FunctionVersion) -> int:
        with self._lock:
            vp = self._pools.get(version.key)
            return len(vp.idle) if vp else 0

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            envs = [i.env for vp in self._pools.values() for i in vp.idle]
            for vp in self._pools.values():
                vp.idle = []
                vp.live = False
        for env in envs:
            env.destroy()
        if self.prestart is not None:
            self.prestart.close()
        self._reaper.join(timeout=2)
        for backend in self.backends.values():
            backend.close()

    def _total_locked(self) -> int:
        return sum(len(vp.idle) + vp.busy + vp.starting for vp in self._pools.values())

    def _lru_idle_locked(self, exclude: VersionPool | None) -> ExecutionEnvironment | None:
        """Remove and return the least recently used idle environment, sparing `exclude` and
        every pool's provisioned floor."""
        best: tuple[float, VersionPool, Idle] | None = None
        for vp in self._pools.values():
            if vp is exclude or len(vp.idle) + vp.busy <= vp.floor or not vp.idle:
                continue
            oldest = vp.idle[0]  # LIFO list: the bottom is the least recently used
            if best is None or oldest.since < best[0]:
                best = (oldest.since, vp, oldest)
        if best is None:
            return None
        best[1].idle.remove(best[2])
        return best[2].env

