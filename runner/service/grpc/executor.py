"""The gRPC server's thread pool: a standard ThreadPoolExecutor, replaced by a fresh one once a
burst that grew it is over.

grpcio's synchronous server runs each RPC on a thread of the executor it is given, and an
invocation holds its thread for its whole duration, so the pool grows to as many threads as
there were invocations in flight. `concurrent.futures.ThreadPoolExecutor` never lets a thread
go, and a server holding a burst's threads was measurably slower afterwards at low
concurrency: the bare gRPC echo at 2 clients did 24-34% fewer invocations per second after
2 s at 8 clients than before, and the runner 12-22% (docs/decisions/041). A pool written in
Python that hands work to its warmest thread and retires idle ones fixed that, but cost
10-15% in steady state against the C-implemented queue ThreadPoolExecutor uses.

So `RenewingPool` keeps ThreadPoolExecutor for the work, and only watches how many items are
in flight. Once more than `keep` were in flight at some point and then, for `quiet_s`, never
more than `keep`, the next submit moves to a fresh ThreadPoolExecutor; the old one is shut
down without waiting: its idle threads exit, its running items finish on their threads.
Nothing changes for the work itself: no limit below `max_workers`, no queueing order change,
futures as concurrent.futures documents.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent import futures

# More items in flight than this makes the pool grow beyond what a quiet server needs: one
# thread per CPU is the most that can run Python-level work at once anyway.
KEEP_THREADS = os.cpu_count() or 1
# How long the pool must stay at or under KEEP_THREADS in flight before it is renewed. Long
# enough that steady or gently varying traffic keeps its threads (a renewal costs the next
# few RPCs a thread start, ~0.1 ms each); short enough that a server is back to few threads a
# second after a burst (the slowdown was measured still there 3 s after one).
QUIET_S = 1.0


class RenewingPool(futures.Executor):
    """A concurrent.futures.Executor; see the module docstring."""

    def __init__(self, max_workers: int, *, thread_name_prefix: str = "pool",
                 keep: int = KEEP_THREADS, quiet_s: float = QUIET_S) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max = max_workers
        self._prefix = thread_name_prefix
        self._keep = max(1, keep)
        self._quiet_s = quiet_s
        self._pool = self._new_pool()
        self._renewals = 0
        self._lock = threading.Lock()  # taken only to renew and to shut down
        self._shutdown = False
        # In flight = submitted - finished. next() on an itertools.count is atomic under the
        # GIL; the last finished count is a plain store, at worst a few items stale, which
        # only delays or advances a renewal by as much.
        self._submitted = itertools.count(1)
        self._finished = itertools.count(1)
        self._last_finished = 0
        self._grown = False  # more than `keep` in flight since the current pool was made
        self._busy_at = time.monotonic()  # when more than `keep` were last in flight

    def _new_pool(self) -> futures.ThreadPoolExecutor:
        return futures.ThreadPoolExecutor(max_workers=self._max, thread_name_prefix=self._prefix)

    def _tracked(self, fn, args, kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            self._last_finished = next(self._finished)

    def submit(self, fn, /, *args, **kwargs) -> futures.Future:
        in_flight = next(self._submitted) - self._last_finished
        now = time.monotonic()
        if in_flight > self._keep:
            self._busy_at = now
            self._grown = True
        elif self._grown and now - self._busy_at >= self._quiet_s:
            self._renew()
        while True:
            pool = self._pool
            try:
                return pool.submit(self._tracked, fn, args, kwargs)
            except RuntimeError:
                # `pool` was renewed (and shut down) between the read and the submit: use the
                # new one. Raised again only once this pool itself is shut down.
                if self._shutdown or pool is self._pool:
                    raise

    def _renew(self) -> None:
        with self._lock:
            if not self._grown or self._shutdown:
                return  # another thread renewed it first
            old, self._pool = self._pool, self._new_pool()
            self._grown = False
            self._renewals += 1
        # Without waiting: old's running items finish on their threads, its idle threads exit.
        old.shutdown(wait=False)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shuts the current pool down as ThreadPoolExecutor does. Items still running in a
        pool renewed earlier finish on their own threads; they are not waited for."""
        with self._lock:
            self._shutdown = True
            pool = self._pool
        pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    @property
    def renewals(self) -> int:
        """How many times the pool has been replaced (for tests and diagnostics)."""
        return self._renewals
