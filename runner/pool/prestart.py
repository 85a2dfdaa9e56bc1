"""Pre-started environments: runtime processes launched ahead of demand.

Node cannot fork, so a Node cold start would pay for a whole `node` start-up (~40 ms) before the
handler even loads; a Python cold start from the zygote still pays a fork and the environment's
cgroup set-up. This pool keeps, per function version, a few environments on which
`launch()` already ran: the process is up, has said hello, has its limits applied (cgroup,
rlimits) and is parked reading its socket. A cold start then only runs init (`start()`), a few
milliseconds for a light handler. No function code runs in a pre-started environment: the
bootstrap waits for `init`. (A Python child forked from the version's zygote inherited the
init phase, so its launch() also does the handshake and it waits READY: decision 036.)

Sizing follows recent demand. Every TICK_S the cold starts counted for a version feed an
exponentially weighted moving average (EWMA) of cold starts per second; the target number of
spares is that rate times COVER_S, rounded up, at least 1 while the version had a cold start in
the last FORGET_S, at most MAX_PER_VERSION. A version nobody cold-starts decays to 0 spares.

Threading: one daemon thread plans refills and hands launches to LAUNCH_PARALLEL launcher
threads; `take()` runs on invocation threads. All shared state is
under `_lock`; launching and destroying (fork+exec, kill+reap: milliseconds) happen outside it.
An environment is in exactly one place: a version's spare list, or being launched (counted in
`launching`), or handed out (no longer ours).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from runner import settings
from runner.environments.base import Backend, is_alive
from runner.errors import FunctionTimeout
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

# Tuning constants, with the reason for each number.
TICK_S = 0.25  # EWMA update and refill period: reacts to a burst within a second
HALF_LIFE_S = 5.0  # demand seen 5 s ago counts half: follows bursts, forgets them in ~20 s
COVER_S = 2.0  # spares cover two seconds of cold starts: a loaded host launches in ~1 s
MAX_PER_VERSION = 8  # an idle node process holds ~40 MB RSS; 8 absorb a burst of 8 at once
MAX_TOTAL = 32  # host-wide cap on spares: 32 x 40 MB = 1.3 GB at most, on a 24 GB machine
FORGET_S = 120.0  # after 2 minutes without a cold start a version keeps no spare at all
FAILURE_BACKOFF_S = 5.0  # a launch that failed (binary gone, host full) is not retried sooner
# Launches in flight at once, host-wide (issue 17, item 7). One at a time, a loaded 2-core host
# (node launches of ~1 s there instead of ~40 ms) refilled about one Node spare per second while
# timeouts used up several per second, and every miss was a launch on an invocation's path
# (Node 1 s timeouts reported after up to 6.7 s). A launch mostly waits (exec, bwrap's
# namespaces, cgroup v1 migrations: RCU grace periods), so a few overlap well. With it, the
# cover and the per-version cap went from 1 s and 4 to 2 s and 8: 8 threads invoking a Node
# function (10% timeouts) in-process missed a spare in 48 of 105 cold starts before, 20 of 131
# after (cold p50 0.25 -> 0.10 s); MAX_TOTAL still bounds the host.
LAUNCH_PARALLEL = 4
# Node cannot fork, so a spare saves its whole start-up. A Python spare is a child already
# forked from the version's zygote with its cgroup and rlimits applied and its handshake done:
# a cold start then skips the fork and the cgroup set-up (task migration on cgroup v1 costs
# milliseconds) and pays only its first invocation. A Python spare costs ~2 MB PSS. A wasm
# spare is an environment already started in-process: its /tmp mounted (a tmpfs mount), its
# store and instance made and its init run, 0.22 ms of the 0.27 ms a cold start took before
# its first invocation (decision 082); it costs its instance's memory (~0.04 MB for the echo).
DEFAULT_RUNTIMES = ("nodejs", "python", "wasm")
# Issue 24 (decision 069): a backend whose `spare_init` is set (environments/base.py: Node.js
# unless RUNNER_NODE_PREINIT=off, wasm) has its spares also run the version's init ahead of
# demand, then frozen until taken where the environment can be, as Python's zygote children
# inherit theirs: a cold start then pays its first invocation only (a Node handler's require()
# was most of the remaining ~5 ms). An init that fails in a spare costs nothing but the spare:
# it is destroyed, and the cold start that finds no spare runs init itself and reports the
# error as before.
# A spare's init gets this long (the environment's `init_budget_s`: the reply's wait for a
# Node spare, the epoch deadline of a wasm reactor's init); past it the spare is dropped and
# the version's later spares are launched without their init (the cold start runs it, as
# before). A heavy init at a small memory size (7 % of a CPU at 128 MB) would otherwise run
# twice on a deploy that is followed at once by an invocation: once in the spare until
# Lambda's 10 s init limit, once in the cold start that found no spare ready.
PREINIT_BUDGET_S = 1.0


@dataclass
class _Entry:
    version: FunctionVersion
    spares: list = field(default_factory=list)  # launched environments, oldest first
    launching: int = 0
    pending: int = 0  # cold starts since the last tick
    rate: float = 0.0  # EWMA of cold starts per second
    last_cold: float = 0.0  # monotonic time of the latest cold start
    failed_until: float = 0.0
    live: bool = True
    taken: int = 0  # statistics: cold starts served by a spare
    missed: int = 0  # statistics: cold starts that found none
    preinit: bool = True  # False once a spare's init overran PREINIT_BUDGET_S


class PreStartPool:
    """Per-version spares of launched-not-initialised environments. Thread-safe."""

    def __init__(self, backends: dict[str, Backend], runtimes: tuple[str, ...] = DEFAULT_RUNTIMES,
                 *, max_per_version: int = MAX_PER_VERSION, max_total: int = MAX_TOTAL,
                 tick_s: float = TICK_S) -> None:
        self.backends = backends
        self.runtimes = frozenset(runtimes)
        self.max_per_version = max_per_version
        self.max_total = max_total
        self.tick_s = tick_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._entries: dict[str, _Entry] = {}
        self._closed = False
        self._launcher = ThreadPoolExecutor(max_workers=LAUNCH_PARALLEL,
                                            thread_name_prefix="prestart-launch")
        self._thread = threading.Thread(target=self._run, name="prestart-refill", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    def handles(self, version: FunctionVersion) -> bool:
        backend = self.backends.get(version.config.runtime)
        return version.config.runtime in self.runtimes and backend is not None

    def take(self, version: FunctionVersion):
        """A launched environment of `version` (NEW, or READY for a zygote child), or None.
        Either way the call counts as one cold start of `version` for the demand estimate."""
        if not self.handles(version):
            return None
        with self._lock:
            if self._closed:
                return None
            entry = self._entries.get(version.key)
            if entry is None:
                entry = self._entries[version.key] = _Entry(version)
            entry.pending += 1
            entry.last_cold = time.monotonic()
            env = None
            dead = []
            while entry.spares:
                candidate = entry.spares.pop()  # newest first: least likely to have been killed
                if is_alive(candidate):
                    env = candidate
                    break
                dead.append(candidate)
            if env is not None:
                entry.taken += 1
            else:
                # A miss is demand beyond the spares: refill at once. A hit waits for the next
                # tick (<= TICK_S): a spare started now would run beside the cold invocation
                # that took the last one, on the same CPUs and, for wasm, under the same GIL
                # (a wasm cold start through gRPC 1.4-1.8 ms -> 0.8-1.0 ms; decision 087).
                entry.missed += 1
                self._wake.notify()
        for d in dead:
            d.destroy()
        return env

    def prewarm(self, version: FunctionVersion, wait: bool = False) -> None:
        """Expect cold starts of `version` soon (e.g. right after a deploy): keep one spare.

        With `wait`, the spare is launched in the calling thread when none exists or is being
        launched, so it is ready when this returns (a deploy pays ~25 ms of node start-up once,
        and an invocation right after it finds the spare)."""
        if not self.handles(version):
            return
        with self._lock:
            if self._closed:
                return
            entry = self._entries.setdefault(version.key, _Entry(version))
            entry.last_cold = time.monotonic()
            launch_here = wait and not entry.spares and not entry.launching
            if launch_here:
                entry.launching += 1  # counted like the refill thread's launches
            self._wake.notify()
        if launch_here:
            self._launch_one(entry)

    def forget(self, version: FunctionVersion) -> None:
        """The version is retired: destroy its spares; launches in flight are dropped on return."""
        with self._lock:
            entry = self._entries.pop(version.key, None)
            if entry is None:
                return
            entry.live = False
            doomed, entry.spares = entry.spares, []
        for env in doomed:
            env.destroy()

    def stats(self) -> dict:
        with self._lock:
            return {
                key: {"spares": len(e.spares), "launching": e.launching, "rate": round(e.rate, 3),
                      "target": self._target_locked(e, time.monotonic()),
                      "taken": e.taken, "missed": e.missed}
                for key, e in self._entries.items()
            }

    def close(self) -> None:
        with self._lock:
            self._closed = True
            doomed = [env for e in self._entries.values() for env in e.spares]
            for e in self._entries.values():
                e.spares = []
                e.live = False
            self._entries.clear()
            self._wake.notify()
        for env in doomed:
            env.destroy()
        self._thread.join(timeout=5)
        # Launches in flight finish on their own and destroy what they launched (closed).
        self._launcher.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ refill thread

    def _target_locked(self, entry: _Entry, now: float) -> int:
        if not entry.live or now - entry.last_cold > FORGET_S:
            return 0
        return min(self.max_per_version, max(1, math.ceil(entry.rate * COVER_S)))

    def _tick_locked(self, elapsed: float) -> None:
        alpha = 1.0 - 0.5 ** (elapsed / HALF_LIFE_S)  # one tick's weight for that half-life
        for entry in self._entries.values():
            observed = entry.pending / elapsed if elapsed > 0 else 0.0
            entry.rate += alpha * (observed - entry.rate)
            entry.pending = 0

    def _plan_locked(self, now: float) -> tuple[list[_Entry], list]:
        """(entries to launch one spare for, environments to destroy) for this round."""
        launch, surplus = [], []
        total = sum(len(e.spares) + e.launching for e in self._entries.values())
        for entry in self._entries.values():
            target = self._target_locked(entry, now)
            have = len(entry.spares) + entry.launching
            while have > target and entry.spares:
                surplus.append(entry.spares.pop(0))  # the oldest go first
                have -= 1
                total -= 1
            if have < target and now >= entry.failed_until and total < self.max_total:
                entry.launching += 1
                total += 1
                launch.append(entry)
        return launch, surplus

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                if now - last >= self.tick_s:
                    self._tick_locked(now - last)
                    last = now
                launch, surplus = self._plan_locked(now)
                if not launch and not surplus:
                    self._wake.wait(timeout=self.tick_s)
                    continue
            for env in surplus:
                env.destroy()
            for entry in launch:
                # Counted in `launching` by the plan: the next round plans past it at once.
                try:
                    self._launcher.submit(self._launch_one, entry)
                except RuntimeError:  # shut down by close() meanwhile
                    with self._lock:
                        entry.launching -= 1

    def _preinit(self, entry: _Entry, backend, env):
        """Run the spare's init now (decision 069), then freeze it until taken. Past the
        budget: the spare is replaced by a launched-only one and the version is not
        pre-initialised again. An init error raises (the caller drops the spare)."""
        env.init_budget_s = PREINIT_BUDGET_S
        # Decision 074: the spare also warms the bootstrap's invoke path (never the handler).
        env.init_warmup = settings.current().node_warmup
        try:
            env.start()
        except FunctionTimeout:
            log.info("%s: init longer than %.1f s; its spares wait before init",
                     entry.version.key, PREINIT_BUDGET_S)
            entry.preinit = False  # one writer per entry at a time: the launching thread
            env.destroy()
            env = backend.create(entry.version)
            env.launch()
            return env
        env.init_budget_s = None
        freeze = getattr(env, "freeze", None)
        if freeze is not None:
            freeze()  # no CPU for init's timers while it waits; invoke() thaws it
        return env

    def _launch_one(self, entry: _Entry) -> None:
        env = None
        with self._lock:
            if not entry.live or self._closed:  # forgotten since the plan: launch nothing
                entry.launching -= 1
                return
        try:
            backend = self.backends[entry.version.config.runtime]
            # Prepared first (idempotent, cached): a spare must start the way the version's
            # environments do, e.g. from its startup snapshot once that is built.
            prepare = getattr(backend, "prepare", None)
            if prepare is not None:
                prepare(entry.version)
            env = backend.create(entry.version)
            env.launch()
            if entry.preinit and getattr(backend, "spare_init", False):
                env = self._preinit(entry, backend, env)
        except Exception as exc:  # a failed spare only costs a future cold start its speed
            log.warning("pre-starting an environment of %s failed: %s", entry.version.key, exc)
            if env is not None:
                env.destroy()
            env = None
        with self._lock:
            entry.launching -= 1
            keep = env is not None and entry.live and not self._closed
            if keep:
                entry.spares.append(env)
            elif env is None:
                entry.failed_until = time.monotonic() + FAILURE_BACKOFF_S
        if env is not None and not keep:
            env.destroy()
