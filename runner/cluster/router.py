"""Where an invocation runs: its function's home node (rendezvous.py) among the live nodes, or
the next in the function's order while the home is at capacity.

The view of live peers comes from the membership table (storage/postgres/nodes.py), refreshed
at most every REFRESH_S off the invoke path's critical section (one query per second per node);
load is what each peer reported in its last heartbeat (up to 2 s old) plus what this node sent
it since, so a burst does not pile onto one peer between heartbeats. The node's own load is
exact (its admission counter).

A function with reserved concurrency (FunctionConfig.concurrency_reserved) never spills: its
calls go to its home alone, whose pool refuses past the limit (TooManyRequests), so the limit
holds cluster-wide without a shared ledger (decision 079). The home is the first live node in
the function's order; when it dies it leaves the live set and every node agrees on the next.

Until the first view of the cluster is read, callers wait for it (one of them reads it): a
burst arriving as the node starts would otherwise see no peers and all run here, reserved
functions' calls included.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from runner.cluster.rendezvous import rank

log = logging.getLogger(__name__)

REFRESH_S = 1.0


@dataclass
class Peer:
    id: str
    address: str
    capacity: int
    reported: int = 0  # in flight at its last heartbeat
    sent: int = 0  # forwarded by this node and not yet answered

    @property
    def load(self) -> int:
        return self.reported + self.sent


class Router:
    def __init__(self, nodes, node_id: str, local_inflight: Callable[[], int],
                 local_capacity: int) -> None:
        self.nodes, self.node_id = nodes, node_id
        self.local_inflight, self.local_capacity = local_inflight, local_capacity
        self._peers: list[Peer] = []
        self._lock = threading.Lock()
        self._refreshed: float | None = None  # monotonic time of the last refresh started
        self._first = threading.Lock()  # held while the first view is read
        self._viewed = False  # a first refresh was attempted (read or failed)

    def peers(self) -> list[Peer]:
        if not self._viewed:
            with self._first:  # the first callers wait for one read instead of no view
                if not self._viewed:
                    self._refresh(time.monotonic())
                    self._viewed = True
            return self._peers
        now = time.monotonic()
        if self._refreshed is None or now - self._refreshed >= REFRESH_S:
            self._refresh(now)
        return self._peers

    def _refresh(self, now: float) -> None:
        self._refreshed = now  # one refresher at a time; others use the previous view
        try:
            live = self.nodes.live()
        except Exception:
            log.exception("cluster view not refreshed; keeping the previous one")
            return
        with self._lock:
            sent = {p.id: p.sent for p in self._peers}
            self._peers = [Peer(n.id, n.address, n.capacity, n.inflight, sent.get(n.id, 0))
                           for n in live if n.address or n.id == self.node_id]

    def choose(self, function: str, reserved: bool = False,
               skip: frozenset[str] = frozenset()) -> Peer | None:
        """The peer to forward to, or None to run here (this node is the home, or the one
        with room first in the function's order, or the cluster view is empty/unknown).
        `reserved`: the home only, full or not (its pool refuses past the limit). `skip`: peers
        the caller found unreachable since the view was read (a reserved function's next
        home in order is then the same on every node that cannot reach the first)."""
        peers = [p for p in self.peers() if p.id not in skip]
        if not peers:
            return None
        ranked = rank(function, peers)
        if reserved:
            return None if ranked[0].id == self.node_id else ranked[0]
        for peer in ranked:
            if peer.id == self.node_id:
                if self.local_inflight() < self.local_capacity:
                    return None
            elif peer.load < peer.capacity:
                return peer
        return None  # everyone at capacity: run here, where admission decides

    def home(self, function: str) -> Peer | None:
        """The function's home peer when it is another node (where its logs are), else None."""
        peers = self.peers()
        if len(peers) <= 1:
            return None
        first = rank(function, peers)[0]
        return None if first.id == self.node_id else first

    def sending(self, peer: Peer) -> "_Sending":
        return _Sending(self._lock, peer)


class _Sending:
    """Counts a forwarded call against its peer's load while it is in flight."""

    def __init__(self, lock: threading.Lock, peer: Peer) -> None:
        self.lock, self.peer = lock, peer

    def __enter__(self) -> Peer:
        with self.lock:
            self.peer.sent += 1
        return self.peer

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.peer.sent -= 1
