"""Waiting for an environment: a call takes the first one to free up or finish starting.

Split from pool.py (leasing and releasing; decision 081): `PoolManager` inherits these from
`WaitingStarts`. They apply when a call needs a new environment while others of its version
are busy or starting, for runtimes whose start costs something (`Backend.start_wait_s`,
base.py: a `node` launch, a fork from Python's zygote). The call joins its version's FIFO of
waiters and is served by whichever comes first: an environment another call releases
(pool.release hands it over warm), or a start run in the background (its own, or an earlier
one whose waiter was served meanwhile).

Invariants (under the pool's lock, with those of pool.py):
* each waiter is served once: popped from `vp.waiters` and given a `result` or an `error` in
  the same locked section, then woken;
* waiters <= background starts + waiters still in their deferral: a waiter needs a start of
  its own only when every background start is already claimed by an earlier waiter, so every
  waiter is served by a start at the latest, and never waits longer than a cold start plus
  the deferral below.

The deferral. A call of a version whose calls are quick (`vp.hold_s`, the average time an
environment is lent out, below the runtime's `start_wait_s`, or not known yet) first waits
`start_wait_s` for an environment to free up, and starts one only if none did: a burst of
short calls is then served by the environments already running instead of starting one per
call, each start taking CPU the running calls need. A version whose calls hold their
environment longer starts at once: waiting for one of them would take longer. Waiting about
what a start costs bounds the loss: a call that waited in vain and then started takes at most
about twice a cold start.
"""

from __future__ import annotations

import logging
import threading
import time

from runner.errors import TooManyRequests
from runner.model import FunctionVersion
from runner.pool.base import InitFailure, Lease
from runner.pool.upkeep import Idle, VersionPool

log = logging.getLogger(__name__)

class Waiter:
    """One call waiting for an environment: `result` (a Lease or an InitFailure) or `error`
    (a platform error of a start) is set under the pool's lock, then `done`."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Lease | InitFailure | None = None
        self.error: BaseException | None = None

    @property
    def served(self) -> bool:
        return self.result is not None or self.error is not None


class WaitingStarts:
    """The waiting half of `PoolManager`, which supplies _lock, _closed, backends, _create()
    and _make_room_locked()."""

    def _start_wait_s(self, version: FunctionVersion) -> float:
        """Backend.start_wait_s (base.py) of the version's runtime; 0.0 when it has none."""
        backend = self.backends.get(version.config.runtime)
        return float(getattr(backend, "start_wait_s", 0.0))

    def _wait(self, vp: VersionPool, waiter: Waiter, *, start: bool,
              defer_s: float) -> Lease | InitFailure:
        """Block until `waiter` is served; run its start now (`start`), or after `defer_s`
        if it is still needed then."""
        if start:
            self._start_in_background(vp)
        elif defer_s and not waiter.done.wait(defer_s):
            self._start_deferred(vp, waiter)
        waiter.done.wait()  # bounded: by a start's own init timeout at the latest
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _start_deferred(self, vp: VersionPool, waiter: Waiter) -> None:
        evicted: list = []
        with self._lock:
            if waiter.served or len(vp.waiters) <= vp.background:
                return  # served meanwhile, or a start already running will serve it
            try:
                self._make_room_locked(vp, evicted)
            except TooManyRequests as exc:  # host full: refused now, as an undeferred call
                vp.waiters.remove(waiter)
                waiter.error = exc
                waiter.done.set()
                return
            vp.starting += 1
            vp.background += 1
        for env in evicted:
            env.destroy()
        self._start_in_background(vp)

    def _start_in_background(self, vp: VersionPool) -> None:
        threading.Thread(target=self._start_for_waiters, args=(vp,), daemon=True,
                         name=f"start-{vp.version.key}").start()

    def _start_for_waiters(self, vp: VersionPool) -> None:
        """A background start: its outcome goes to the oldest waiter still waiting (who may
        not be the one that asked for it: that one may have taken a released environment),
        or, when every waiter was served, the environment joins the idle list."""
        try:
            made = self._create(vp.version)
        except BaseException as exc:  # delivered to a waiter, raised in its thread
            made = exc
        surplus = None
        now = time.monotonic()
        with self._lock:
            vp.starting -= 1  # in the same section as busy += 1: the limit never sees a gap
            vp.background -= 1
            started = not isinstance(made, (InitFailure, BaseException))
            if started:
                vp.inits += 1
            waiter = vp.waiters.popleft() if vp.waiters else None
            if waiter is None:
                if started and vp.live and not self._closed.is_set():
                    vp.idle.append(Idle(made, now))
                elif started:
                    surplus = made
                else:
                    log.warning("an environment of %s started for a burst failed to start, "
                                "after every waiting invocation was served: %s",
                                vp.version.key, getattr(made, "error", made))
            elif started:
                vp.busy += 1
                vp.cold_starts += 1
                waiter.result = Lease(made, vp.version, cold=True, slot=vp, since=now)
            elif isinstance(made, InitFailure):
                waiter.result = made
            else:
                waiter.error = made
        if waiter is not None:
            waiter.done.set()
        if surplus is not None:
            surplus.destroy()
