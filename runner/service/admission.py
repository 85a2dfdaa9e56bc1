"""Admission at the edges: how many of each kind of long-held call a server takes at once.

An edge serves each call on a thread of a bounded pool. A synchronous invocation holds its
thread for the whole invocation and a `--follow` log stream for as long as its client
listens, so 64 slow invocations or 64 followers used to take every thread: management,
health checks and short invocations then waited in the pool's queue (a quick invoke waited
5.7 s, ListFunctions timed out). Now each kind has a ceiling below the pool's size, checked
without waiting: a call past it is refused at once (TooManyRequestsException, gRPC
RESOURCE_EXHAUSTED, HTTP 429), never queued behind the others, and the threads above the
ceilings stay free for everything else.
"""

from __future__ import annotations

import threading

from runner.errors import TooManyRequests

SYNC_INVOCATIONS = 256  # in flight per server: the pool's default host-wide environment limit
LOG_FOLLOWERS = 64  # open `logs --follow` streams per server
RESERVE = 32  # threads for everything else: management, health, dry runs, async submissions
GRPC_WORKERS = SYNC_INVOCATIONS + LOG_FOLLOWERS + RESERVE


class Slots:
    """At most `limit` holders at once: `with slots:` holds one for the block, or raises
    TooManyRequests at once when all are held. Thread-safe."""

    def __init__(self, limit: int, what: str) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.what = what
        self._lock = threading.Lock()
        self.held = 0

    def __enter__(self) -> "Slots":
        with self._lock:
            if self.held >= self.limit:
                raise TooManyRequests(
                    f"{self.limit} {self.what} are in progress on this server, its limit; retry "
                    "with backoff, or spread the load over more servers")
            self.held += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.held -= 1
