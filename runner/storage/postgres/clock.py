"""The database's clock, read cheaply: the wall-clock time every node of a cluster agrees on.

Times one node writes and another acts on -- a workflow's Wait, retry delay and TimeoutSeconds
(decision 079), like the leases' expiry (nodes.py, which compares in SQL with `now()`) -- must
come from one clock, or a takeover shifts them by the skew between the two hosts. Asking the
database on every call would put a round trip in the interpreter's sleep loop, so the clock
keeps the offset between the database's clock and this host's and refreshes it every
REFRESH_S: between refreshes it is `time.time() + offset`, off only by how far the two clocks
drift apart within REFRESH_S (microseconds), and a step of this host's clock (an NTP
correction) is absorbed at the next refresh. The offset is measured around the query's
midpoint, so it is off by at most half the round trip.

The database being away keeps the last offset (0 before the first read: this host's clock),
so a workflow keeps running through a database restart on the best time it has.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

REFRESH_S = 5.0
QUERY = "SELECT extract(epoch from clock_timestamp())::float8 AS t"


class DatabaseClock:
    """Callable: seconds since the epoch by the database's clock. `db`: a connection.Database
    (the calling store's own pool: call the clock outside that store's transactions, so a
    refresh never waits for a connection its caller holds)."""

    def __init__(self, db, refresh_s: float = REFRESH_S) -> None:
        self._db, self.refresh_s = db, refresh_s
        self.offset = 0.0  # the database's clock minus this host's
        self._read_at: float | None = None  # monotonic time of the last refresh attempt
        self._refreshing = threading.Lock()

    def refresh(self) -> None:
        """Measure the offset now (also what __call__ does every refresh_s)."""
        self._read_at = time.monotonic()
        before = time.time()
        row = self._db.one(QUERY)
        after = time.time()
        self.offset = float(row["t"]) - (before + after) / 2

    def __call__(self) -> float:
        due = self._read_at is None or time.monotonic() - self._read_at >= self.refresh_s
        if due and self._refreshing.acquire(blocking=False):  # one refresher; others go on
            try:
                self.refresh()
            except Exception:
                log.warning("database clock not read; keeping the offset %.3f s", self.offset,
                            exc_info=True)
            finally:
                self._refreshing.release()
        return time.time() + self.offset
