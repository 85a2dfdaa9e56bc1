"""SIGTERM and SIGINT as a request to stop, for the long-running commands (`runner serve`, the
`--workers` supervisor).

Why not `threading.Event.set()` in the handler: Python runs a signal handler in the main
thread between two bytecodes, possibly while that same thread is inside `Event.wait()` or
`Event.set()` holding the Event's internal, non-reentrant lock. A second signal arriving while
the first handler's `set()` holds that lock (a supervisor that sends SIGTERM twice does this)
made the handler wait on a lock its own thread holds: the server hung for good, ignoring
every later signal.

So the handler does two things that cannot block or re-enter a lock: it assigns a flag and
writes one byte to a non-blocking self-pipe (a full pipe already says "stop", so
BlockingIOError is ignored). `wait()` polls the pipe's read end: a signal interrupts poll(),
Python runs the handler, and the retried poll (PEP 475) finds the byte at once.
"""

from __future__ import annotations

import os
import select
import signal
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Installed in the main thread (CPython delivers signals only there). Not thread-safe
    for waiting: one waiter, the main thread; `is_set()` may be read from any thread."""

    def __init__(self) -> None:
        self._requested = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        for sig in SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self._requested = True
        try:
            os.write(self._w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe already holds a byte (or is closed): the flag is what counts

    def request(self) -> None:
        """Ask to stop from code (not a signal): the same as receiving SIGTERM."""
        self._handle(signal.SIGTERM, None)

    def is_set(self) -> bool:
        return self._requested

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested or `timeout` seconds pass; True if requested."""
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        while not self._requested:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            poller.poll(None if left is None else left * 1000)
            if deadline is not None and time.monotonic() >= deadline:
                break
        return self._requested
