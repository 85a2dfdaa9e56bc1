"""Idle environments are frozen, a moment after they go idle, until their next invocation.

Lambda freezes an environment between invocations: a guest's background threads, timers and
child processes get no CPU while it is idle. Here a background thread freezes an idle
environment once it has been idle FREEZE_AFTER_S (its optional `freeze()`, environments/
base.py: the cgroup freezer), and the environment's next invoke() thaws it.

Why not at once, in release(): a cgroup v1 freezer write costs ~0.08 ms and so does the thaw
(measured, bench/freezer_bench.py), and a settled freeze adds a wake-up to the thaw: on the
back-to-back warm path that was +0.27 ms per invocation for nothing, since the environment is
taken again at once. Delayed, a busy environment is never frozen, and an idle one stops
costing CPU within ~FREEZE_AFTER_S + POLL_S of its last invocation.

Safety: the freeze happens under the pool's lock while the environment is in an idle list, so
no acquire() can take it halfway; once taken (under the same lock) the freezer never touches
it again, and invoke() thaws what is frozen. An environment that cannot be frozen (its cgroup
vanished) is removed and destroyed instead of kept.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

log = logging.getLogger(__name__)

FREEZE_AFTER_S = 0.1  # idle this long before its freeze: background work gets at most this
POLL_S = 0.05  # how often idle environments are looked at (a few microseconds each time)
# Freezes per pass: each is a ~0.08 ms write under the pool's lock, so a burst going idle at
# once holds acquire() up for at most ~3 ms per pass; the rest waits for the next pass.
MAX_PER_PASS = 32


class IdleFreezer:
    """Freezes the pool's idle environments (see the module docstring). `lock` is the pool's;
    `idle_entries()` yields (version pool, idle entry) pairs and is called with it held."""

    def __init__(self, lock: threading.Lock, idle_entries: Callable[[], Iterable],
                 closed: threading.Event, enabled: Callable[[], bool] = lambda: True) -> None:
        self._lock = lock
        self._idle_entries = idle_entries
        self._closed = closed
        self._enabled = enabled  # read at every pass: the pool's switch can change at run time
        self._thread = threading.Thread(target=self._loop, name="pool-freezer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.wait(POLL_S):
            if not self._enabled():
                continue
            try:
                self.freeze_due(time.monotonic())
            except Exception:  # the freezer must outlive any one bad environment
                log.exception("idle freezer failed")

    def freeze_due(self, now: float) -> int:
        """Freeze every idle environment idle for FREEZE_AFTER_S or more; returns how many."""
        frozen = 0
        failed = []
        with self._lock:
            for vp, idle in self._idle_entries():
                if idle.frozen or now - idle.since < FREEZE_AFTER_S:
                    continue
                if frozen + len(failed) >= MAX_PER_PASS:
                    break
                freeze = getattr(idle.env, "freeze", None)
                try:
                    if freeze is not None:
                        freeze()
                        frozen += 1
                    idle.frozen = True  # (or nothing to freeze it with: nothing to do again)
                except OSError as exc:
                    log.warning("could not freeze an idle environment of %s (%s); replacing it",
                                vp.version.key, exc)
                    failed.append((vp, idle))
            for vp, idle in failed:
                vp.idle.remove(idle)
        for _, idle in failed:
            idle.env.destroy()
        return frozen
