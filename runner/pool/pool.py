"""Per-version pools of execution environments, with concurrency limits and idle reaping.

Invariants (under `self._lock`):
* for each version: busy + starting <= its configured concurrency;
* in total: idle + busy + starting <= max_environments (the host-wide limit); when full, the
  least recently used idle environment of *another* version is evicted to make room;
* an environment is in exactly one place: an idle list, or lent out (busy), or being created.
Environment creation (init) and destruction run outside the lock: they take milliseconds to
seconds and must not serialise unrelated functions.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import psutil

from runner import settings
from runner.confinement import ksm
from runner.environments.base import Backend, ExecutionEnvironment, is_alive
from runner.errors import FunctionError, InternalError, TooManyRequests
from runner.model import FunctionVersion
from runner.pool.base import InitFailure, Lease
from runner.pool.freezer import IdleFreezer
from runner.pool.prestart import PreStartPool

log = logging.getLogger(__name__)

# Tuning constants.
DEFAULT_IDLE_TTL_S = 300.0  # Lambda keeps idle environments for minutes; 5 is a common middle
DEFAULT_MAX_ENVIRONMENTS = 256  # host-wide; ~256 x 20 MB Python environments = 5 GB
REAPER_PERIOD_S = 1.0  # how often idle environments are checked against the TTL
# Under memory pressure (host memory available below this fraction), idle environments are
# destroyed least recently used first until it recovers: idle ones cost memory and no work.
MIN_AVAILABLE_FRACTION = 0.10


@dataclass
class _Idle:
    env: ExecutionEnvironment
    since: float
    frozen: bool = False  # set by the IdleFreezer (freezer.py), under the pool's lock


@dataclass
class _VersionPool:
    version: FunctionVersion
    idle: list[_Idle] = field(default_factory=list)  # LIFO: the warmest environment on top
    busy: int = 0
    starting: int = 0
    live: bool = True  # False once retired: nothing returns to the idle list
    cold_starts: int = 0  # invocations that had to wait for an environment's init
    inits: int = 0  # environments initialised (cold starts + provisioned + replacements)
    invocations: int = 0
    replenishing: bool = False  # a background thread is creating provisioned environments

    @property
    def floor(self) -> int:
        """Environments kept initialised at all times (provisioned concurrency)."""
        return self.version.config.provisioned if self.live else 0


class PoolManager:
    """The `EnvironmentPool` of base.py for all versions of all functions."""

    def __init__(
        self,
        backends: dict[str, Backend],
        *,
        idle_ttl_s: float = DEFAULT_IDLE_TTL_S,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        prestart: bool = True,
        freeze_idle: bool | None = None,
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
        self.max_environments = max_environments
        self._lock = threading.Lock()
        self._pools: dict[str, _VersionPool] = {}
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
                vp = self._pools[version.key] = _VersionPool(version)
            vp.invocations += 1
            if vp.idle:
                env = vp.idle.pop().env
                vp.busy += 1
                return Lease(env, version, cold=False, slot=vp)
            limit = version.config.concurrency
            if vp.busy + vp.starting >= limit:
                raise TooManyRequests(
                    f"Rate exceeded: function {version.name!r} is at its concurrency limit "
                    f"({limit}); retry later or deploy with a higher --concurrency"
                )
            if self._total_locked() >= self.max_environments:
                victim = self._lru_idle_locked(exclude=vp)
                if victim is None:
                    raise TooManyRequests(
                        f"Rate exceeded: the host runs its maximum of {self.max_environments} "
                        "environments; retry later or raise --max-environments"
                    )
                evicted.append(victim)
            vp.starting += 1
        for env in evicted:
            env.destroy()
        env = None
        try:
            self.prepare(version)
            env = self.prestart.take(version) if self.prestart is not None else None
            if env is None:
                env = self.backend(version).create(version)
            env.start()
        except FunctionError as exc:  # the guest's init failed: reported on the invocation
            with self._lock:
                vp.starting -= 1
            if env is None:
                return InitFailure(exc, b"", None)
            return InitFailure(exc, env.init_logs, env.init_duration_ms)
        except BaseException:
            with self._lock:
                vp.starting -= 1
            raise
        with self._lock:
            vp.starting -= 1
            vp.busy += 1
            vp.cold_starts += 1
            vp.inits += 1
        return Lease(env, version, cold=True, slot=vp)

    def release(self, lease: Lease, reusable: bool) -> None:
        with self._lock:
            vp = lease.slot if lease.slot is not None else self._pools.get(lease.version.key)
            keep = reusable and vp is not None and vp.live and not self._closed.is_set()
            if vp is not None:
                vp.busy -= 1
            if keep:
                vp.idle.append(_Idle(lease.env, time.monotonic()))
                return
        lease.env.destroy()

    def retire(self, version: FunctionVersion) -> None:
        idle: list[_Idle] = []
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

    # ------------------------------------------------------------------ reaping, stats

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
        while not self._closed.wait(min(REAPER_PERIOD_S, self.idle_ttl_s / 2)):
            try:
                self.reap()
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
                vp = self._pools[version.key] = _VersionPool(version)
        if not wait:
            self._replenish_async(vp)
            return 0
        return self._replenish(vp)

    def _replenish(self, vp: _VersionPool) -> int:
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
                    vp.idle.insert(0, _Idle(env, time.monotonic()))
                    created += 1
                    continue
            env.destroy()
            return created

    def _replenish_async(self, vp: _VersionPool) -> None:
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
            return {"versions": per, "total": self._total_locked()}

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

    def _lru_idle_locked(self, exclude: _VersionPool | None) -> ExecutionEnvironment | None:
        """Remove and return the least recently used idle environment, sparing `exclude` and
        every pool's provisioned floor."""
        best: tuple[float, _VersionPool, _Idle] | None = None
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

