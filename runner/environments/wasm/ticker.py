"""The epoch ticker: wasmtime's clock for deadlines, and the guard on guests' output files.

wasmtime's epoch interruption is cooperative and cheap: compiled code checks an engine-wide
counter at loop heads and function entries, and traps (TrapCode.INTERRUPT) once the counter
passes the store's deadline. Something must advance the counter; this thread does, every
TICK_S, while guest calls are in flight and for LINGER_S after the last one ended, then it
parks (an idle server wakes nobody). The linger spares a steady stream of short calls a
wake-up of this thread per call, which took the GIL in the middle of the call.

Deadline arithmetic (`ticks_until`): a store's deadline is N ticks after the current epoch, and
the first tick may come anywhere in (0, TICK_S] from now, so N = ceil(remaining / TICK_S) + 1
guarantees the trap never fires before the deadline and at most ~2 ticks (+ ~0.2 ms for the
trap to unwind) after it.

Output guard: a guest's stdout and stderr are files under /dev/shm (RAM). A guest printing in a
loop until its timeout could write gigabytes, so on every tick the files registered with
`watch()` are checked and cut back to their limit (ftruncate; the guest's later writes land past
the end, leaving a hole, which takes no memory). The reader sees `overflowed` and marks the log;
what was written after the last tick is checked when the call's output is collected
(guest_io.OutputWindow.collect).
`punch_hole` frees what a long-lived reactor's log file has accumulated once it has been read,
keeping the size (the guest's write offset) intact.
"""

from __future__ import annotations

import math
import os
import threading
import time

import wasmtime

TICK_S = 0.002
# How long the ticker keeps ticking after the last call ends before it parks: 250 ticks of a
# few microseconds each, against one wake-up per call for a server answering calls back to back.
LINGER_S = 0.5


class Watched:
    """An output file held at `limit` bytes while a guest call runs."""

    __slots__ = ("fd", "limit", "overflowed")

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.limit = limit
        self.overflowed = False

    def poll(self, now: float) -> None:
        try:
            if os.fstat(self.fd).st_size > self.limit:
                os.ftruncate(self.fd, self.limit)
                self.overflowed = True
        except OSError:
            pass  # the environment closed the file meanwhile


class OnDeadline:
    """Calls `action` once, from the ticker thread, when `deadline` passes during a call.

    Used to take a throttled guest thread out of its CPU cgroup at its deadline: a thread that
    has spent its CFS quota would otherwise sleep until the next period (up to 100 ms) before it
    could even notice the epoch trap."""

    __slots__ = ("deadline", "action", "fired")

    def __init__(self, deadline: float, action) -> None:
        self.deadline = deadline
        self.action = action
        self.fired = False

    def poll(self, now: float) -> None:
        if not self.fired and now >= self.deadline:
            self.fired = True
            self.action()


class EpochTicker:
    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._cond = threading.Condition()
        self._active = 0
        self._parked = False  # the thread waits for a call (it is ticking otherwise)
        self._last_end = 0.0  # when the last call ended (monotonic)
        self._watched: set = set()  # Watched and OnDeadline items of calls in flight
        self._stopped = False
        self._epoch = 0  # ticks issued (mirrors the engine's counter, which has no getter)
        self._latest_deadline = 0  # the furthest epoch any store was given as its deadline
        self._base = time.monotonic()  # when tick 0 was due
        self._thread = threading.Thread(target=self._run, name="wasm-epoch", daemon=True)
        self._thread.start()

    def ticks_until(self, remaining_s: float) -> int:
        """Epoch ticks for a store's deadline `remaining_s` from now (see the module doc)."""
        ticks = max(1, math.ceil(remaining_s / TICK_S) + 1)
        with self._cond:
            self._latest_deadline = max(self._latest_deadline, self._epoch + ticks)
        return ticks

    def expire_all(self) -> None:
        """Advance the epoch past every deadline handed out: each running guest call traps
        (INTERRUPT) at once. Used at shutdown, when a call cannot be waited for."""
        with self._cond:
            # +2: deadlines were computed against this mirror, which may lead the engine's
            # counter by the increments of a tick in progress.
            behind = max(0, self._latest_deadline - self._epoch + 2)
            self._epoch += behind
            self._base = time.monotonic() - self._epoch * TICK_S
        for _ in range(behind):
            self._engine.increment_epoch()

    def begin(self, *watched) -> None:
        """A guest call starts: tick until the matching end()."""
        with self._cond:
            self._active += 1
            self._watched.update(watched)
            if self._parked:
                # Idle time is not caught up: the schedule restarts from now, so a burst of
                # overdue ticks can never fire a fresh deadline early.
                self._base = time.monotonic() - self._epoch * TICK_S
                self._parked = False
                self._cond.notify()

    def end(self, *watched) -> None:
        """A guest call ended. Its output files are not checked here: the caller collects
        them next, and collecting checks them (guest_io.OutputWindow.collect)."""
        with self._cond:
            self._active -= 1
            self._watched.difference_update(watched)
            self._last_end = time.monotonic()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while (self._active == 0 and not self._stopped
                       and time.monotonic() - self._last_end >= LINGER_S):
                    self._parked = True
                    self._cond.wait()
                if self._stopped:
                    return
                next_at = self._base + (self._epoch + 1) * TICK_S
            time.sleep(max(0.0, next_at - time.monotonic()))
            with self._cond:
                # Ticks follow the clock, not the number of sleeps: a late wake-up (GIL, a busy
                # machine) increments several times, so deadlines do not drift late.
                due = int((time.monotonic() - self._base) / TICK_S)
                behind, self._epoch = max(0, due - self._epoch), max(due, self._epoch)
            for _ in range(behind):
                self._engine.increment_epoch()
            now = time.monotonic()
            with self._cond:
                # Only guards of calls still in flight, polled under the lock that end()
                # takes: a guard listed before its call ended (and polled after the next call
                # wrote past its limit) would cut that call's output off. Each poll is an
                # fstat, and an ftruncate or a cgroup move only when a limit is hit.
                for w in list(self._watched):
                    w.poll(now)


_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = None


def punch_hole(fd: int, length: int) -> None:
    """Free the first `length` bytes of a file without changing its size (Linux fallocate)."""
    global _libc
    if length <= 0:
        return
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
    # Failure (a filesystem without hole punching) only costs memory, never correctness.
    _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, 0, length)
