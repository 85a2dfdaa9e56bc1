"""Cluster membership and singleton leases, stored in PostgreSQL.

Membership: every node (one `runner serve` process) has a row in `cluster_nodes` with the
address its peers forward invocations to, its capacity, and `heartbeat_at`, which the node
renews every HEARTBEAT_S. A node whose heartbeat is older than EXPIRY_S is dead: its rows stay
until it is pruned, but nothing treats it as live any more -- the queue hands its leased
events to others, routing leaves it out, its singleton leases can be taken.

Time is PostgreSQL's clock (`now()`), never a node's: nodes on different hosts compare
heartbeats against one clock, so a host's clock skew cannot make a live node look dead.

Singleton leases (`cluster_leases`): work exactly one node may do at a time (a schedule, a
poller, a sweeper) is held as a named row with a holder and an expiry. `acquire()` takes a free
or expired lease, or renews one the node holds, in one statement; a holder that dies stops
renewing and the lease expires after its ttl. Workflow executions use the same table, one
lease per RUNNING execution (`workflow:<arn>`), taken and checked by the workflow store in its
own transactions (postgres/workflows.py, decision 070); `leave()` frees them with the rest.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass

from runner.storage.postgres.connection import POOLS, Database

HEARTBEAT_S = 2.0
EXPIRY_S = 10.0

# The lease table, shared with the stores whose rows one node at a time may drive (the
# workflow store's executions: postgres/workflows.py takes and checks its leases itself, in
# the transactions of its own rows).
LEASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
"""

# Take a free or expired lease, or renew one the holder has, in one statement (parameters:
# name, holder, ttl in seconds); returns a row only when the caller holds it afterwards.
ACQUIRE = ("INSERT INTO cluster_leases (name, holder, expires_at) "
           "VALUES (%s, %s, now() + make_interval(secs => %s)) "
           "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
           "expires_at = excluded.expires_at "
           "WHERE cluster_leases.holder = excluded.holder OR cluster_leases.expires_at < now() "
           "RETURNING holder")

SCHEMA = LEASES_SCHEMA + """
CREATE TABLE IF NOT EXISTS cluster_nodes (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,          -- host:port its peers forward invocations to
    host         TEXT NOT NULL,
    capacity     INTEGER NOT NULL,       -- synchronous invocations it takes at once
    inflight     INTEGER NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    left_at      TIMESTAMPTZ             -- set by a clean shutdown: gone without waiting
);
"""

# A node is live while its heartbeat is fresh and it has not left. Shared with the queue.
LIVE_NODES = (f"SELECT id FROM cluster_nodes WHERE left_at IS NULL "
              f"AND heartbeat_at > now() - interval '{EXPIRY_S} seconds'")


@dataclass(frozen=True)
class Node:
    id: str
    address: str
    capacity: int
    inflight: int = 0


def new_node_id() -> str:
    """Unique per process start: a restarted node is a new member, never its old self (the
    old one's leases must expire or be taken over, not silently resumed)."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class NodeStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, SCHEMA, size=POOLS["nodes"])

    def register(self, node: Node) -> None:
        self.db.execute(
            "INSERT INTO cluster_nodes (id, address, host, capacity) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET address = excluded.address, "
            "capacity = excluded.capacity, heartbeat_at = now(), left_at = NULL",
            (node.id, node.address, socket.gethostname(), node.capacity))

    def heartbeat(self, node_id: str, inflight: int = 0) -> bool:
        """Renew; False if the row is gone (pruned as dead): the caller registers again."""
        rows = self.db.execute("UPDATE cluster_nodes SET heartbeat_at = now(), inflight = %s "
                               "WHERE id = %s RETURNING id", (inflight, node_id))
        return bool(rows)

    def leave(self, node_id: str) -> None:
        """A clean shutdown: peers stop routing to it at once, its leases are freed."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE cluster_nodes SET left_at = now() WHERE id = %s", (node_id,))
            conn.execute("DELETE FROM cluster_leases WHERE holder = %s", (node_id,))

    def live(self) -> list[Node]:
        rows = self.db.execute(
            f"SELECT id, address, capacity, inflight FROM cluster_nodes WHERE id IN ({LIVE_NODES}) "
            "ORDER BY id")
        return [Node(r["id"], r["address"], r["capacity"], r["inflight"]) for r in rows]

    def prune(self, older_than_s: float = 3600.0) -> int:
        """Forget nodes dead for longer than `older_than_s` (their rows are history only)."""
        rows = self.db.execute(
            "DELETE FROM cluster_nodes WHERE heartbeat_at < now() - make_interval(secs => %s) "
            "RETURNING id", (older_than_s,))
        return len(rows)

    # ------------------------------------------------------------------ singleton leases

    def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take the lease `name` if it is free or expired, or renew it if `holder` has it."""
        return bool(self.db.execute(ACQUIRE, (name, holder, ttl_s)))

    def release(self, name: str, holder: str) -> None:
        self.db.execute("DELETE FROM cluster_leases WHERE name = %s AND holder = %s", (name, holder))

    def holder(self, name: str) -> str | None:
        row = self.db.one("SELECT holder FROM cluster_leases WHERE name = %s AND expires_at >= now()",
                          (name,))
        return row["holder"] if row else None

    def close(self) -> None:
        self.db.close()
