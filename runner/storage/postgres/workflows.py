"""The workflow store on PostgreSQL: the same `WorkflowStore` contract as workflows.py's SQLite
store (tests/unit/storage/test_workflow_store.py runs it against a real server), shared by
the nodes of a cluster (`runner serve --state postgresql://...`, cli/cluster_serve.py).

Connections from the pool every PostgreSQL store uses (connection.py: reopened after the
database restarts); every method is one transaction. `transition()` locks the execution's
row (SELECT ... FOR UPDATE), so two writers of one execution serialize and event ids stay
dense. Tables live in `schema` (created if missing).

Which node drives an execution (decision 070): the lease `workflow:<arn>` in the cluster's
lease table (`cluster_leases`, storage/postgres/nodes.py; the same table and the same acquire
statement as every singleton lease). `claim()` takes it when free or expired, or renews it;
`transition(owner=...)` locks the lease row and writes only while `owner` is its holder, so a
node that paused past the ttl while another took over changes nothing (a fence: the lease
row's lock orders the takeover and the transition, and a holder changes only by a takeover).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from runner.errors import (
    ExecutionDoesNotExist,
    StateMachineDoesNotExist,
)
from runner.storage.postgres.clock import DatabaseClock
from runner.storage.postgres.connection import POOLS, Database
from runner.storage.postgres.nodes import ACQUIRE, LEASES_SCHEMA
from runner.storage.workflows import (
    RUNNING,
    Execution,
    HistoryEvent,
    StateMachine,
    execution_from_row,
    existing_execution,
    existing_machine,
    machine_from_row,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS wf_machines (
    arn TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, definition TEXT NOT NULL,
    type TEXT NOT NULL, role_arn TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS wf_executions (
    seq BIGSERIAL, arn TEXT PRIMARY KEY, machine_arn TEXT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, input TEXT NOT NULL, output TEXT, error TEXT, cause TEXT,
    start DOUBLE PRECISION NOT NULL, stop DOUBLE PRECISION, cursor TEXT,
    definition TEXT NOT NULL DEFAULT '', trace TEXT NOT NULL DEFAULT ''
);
ALTER TABLE wf_executions ADD COLUMN IF NOT EXISTS trace TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS wf_executions_by_machine ON wf_executions (machine_arn, start);
CREATE INDEX IF NOT EXISTS wf_executions_by_status ON wf_executions (status);
CREATE TABLE IF NOT EXISTS wf_events (
    execution TEXT NOT NULL, id INTEGER NOT NULL, timestamp DOUBLE PRECISION NOT NULL,
    type TEXT NOT NULL, details TEXT NOT NULL, PRIMARY KEY (execution, id)
);
""" + LEASES_SCHEMA
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def lease_name(arn: str) -> str:
    """The execution's row in `cluster_leases`."""
    return f"workflow:{arn}"


class PostgresWorkflowStore:
    def __init__(self, url: str, schema: str = "public") -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r}: use lowercase letters, digits and _")
        # Small: a node's transitions are short, and its RPC threads wait for a connection.
        self._db = Database(url, SCHEMA, size=POOLS["workflows"],
                            search_path="" if schema == "public" else schema)
        # Due times by the database's clock, so a takeover does not shift them by the skew
        # between hosts (decision 079). Read outside this store's transactions (the pool).
        self.clock = DatabaseClock(self._db)

    def create_machine(self, machine: StateMachine) -> StateMachine:
        with self._db.transaction() as db:
            row = db.execute("SELECT * FROM wf_machines WHERE name = %s FOR UPDATE",
                                   (machine.name,)).fetchone()
            if row is not None:
                return existing_machine(machine_from_row(row), machine)
            db.execute("INSERT INTO wf_machines VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             (machine.arn, machine.name, machine.definition, machine.type,
                              machine.role_arn, machine.created, machine.updated))
        return machine

    def get_machine(self, arn: str) -> StateMachine:
        with self._db.transaction() as db:
            row = db.execute("SELECT * FROM wf_machines WHERE arn = %s", (arn,)).fetchone()
        if row is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        return machine_from_row(row)

    def list_machines(self) -> list[StateMachine]:
        with self._db.transaction() as db:
            rows = db.execute("SELECT * FROM wf_machines ORDER BY name").fetchall()
        return [machine_from_row(r) for r in rows]

    def update_machine(self, arn, definition=None, role_arn=None) -> StateMachine:
        now = self.clock()
        with self._db.transaction() as db:
            row = db.execute("SELECT * FROM wf_machines WHERE arn = %s FOR UPDATE",
                                   (arn,)).fetchone()
            if row is None:
                raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
            m = replace(machine_from_row(row), updated=now)
            if definition is not None:
                m = replace(m, definition=definition)
            if role_arn is not None:
                m = replace(m, role_arn=role_arn)
            db.execute("UPDATE wf_machines SET definition = %s, role_arn = %s, "
                             "updated = %s WHERE arn = %s",
                             (m.definition, m.role_arn, m.updated, arn))
        return m

    def delete_machine(self, arn: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM wf_machines WHERE arn = %s", (arn,))

    def create_execution(self, execution, events):
        now = self.clock()
        with self._db.transaction() as db:
            inserted = db.execute(
                "INSERT INTO wf_executions (arn, machine_arn, name, status, input, start, cursor,"
                " definition, trace) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (arn) DO NOTHING",
                (execution.arn, execution.machine_arn, execution.name, execution.status,
                 execution.input, execution.start, json.dumps(execution.cursor),
                 execution.definition, execution.trace)).rowcount
            if not inserted:
                old = execution_from_row(db.execute("SELECT * FROM wf_executions WHERE arn = %s",
                                                  (execution.arn,)).fetchone())
                return existing_execution(old, execution)
            self._append(db, execution.arn, events, 0, now)
        return execution, True

    def get_execution(self, arn: str) -> Execution:
        with self._db.transaction() as db:
            row = db.execute("SELECT * FROM wf_executions WHERE arn = %s", (arn,)).fetchone()
        if row is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
        return execution_from_row(row)

    def list_executions(self, machine_arn, status=None):
        q, args = "SELECT * FROM wf_executions WHERE machine_arn = %s", [machine_arn]
        if status:
            q, args = q + " AND status = %s", args + [status]
        with self._db.transaction() as db:
            rows = db.execute(q + " ORDER BY start DESC, seq DESC", args).fetchall()
        return [execution_from_row(r) for r in rows]

    def transition(self, arn, events, *, cursor, status=RUNNING, output=None, error=None,
                   cause=None, only_if_running=True, owner=None) -> bool:
        now = self.clock()
        with self._db.transaction() as db:
            row = db.execute("SELECT status FROM wf_executions WHERE arn = %s FOR UPDATE",
                                   (arn,)).fetchone()
            if row is None:
                raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
            if only_if_running and row["status"] != RUNNING:
                return False
            if owner is not None:
                # Locked until COMMIT: a takeover (ACQUIRE) waits for this transition, and a
                # transition after a takeover sees the new holder. Expiry alone is no reason
                # to refuse: until someone takes the lease, its holder is still the only one.
                lease = db.execute("SELECT holder FROM cluster_leases WHERE name = %s "
                                         "FOR UPDATE", (lease_name(arn),)).fetchone()
                if lease is None or lease["holder"] != owner:
                    return False
            last = db.execute("SELECT COALESCE(MAX(id), 0) AS n FROM wf_events "
                                    "WHERE execution = %s", (arn,)).fetchone()["n"]
            self._append(db, arn, events, last, now)
            db.execute(
                "UPDATE wf_executions SET cursor = %s, status = %s, output = COALESCE(%s, output),"
                " error = COALESCE(%s, error), cause = COALESCE(%s, cause), stop = %s "
                "WHERE arn = %s",
                (json.dumps(cursor) if cursor is not None else None, status, output, error,
                 cause, None if status == RUNNING else now, arn))
            if status != RUNNING:
                # An ended execution is never claimed again (claim() wants RUNNING): its lease
                # row goes with the end, in the same transaction, whoever ended it (its driver,
                # or StopExecution through another node while the driver still renews).
                db.execute("DELETE FROM cluster_leases WHERE name = %s", (lease_name(arn),))
        return True

    def _append(self, db, arn: str, events, last: int, now: float) -> None:
        if not events:
            return
        with db.cursor() as cur:
            cur.executemany("INSERT INTO wf_events VALUES (%s, %s, %s, %s, %s)",
                            [(arn, last + i + 1, now, t, json.dumps(d))
                             for i, (t, d) in enumerate(events)])

    def history(self, arn, *, reverse=False, after=0, limit=0):
        self.get_execution(arn)
        if reverse:
            q = ("SELECT * FROM wf_events WHERE execution = %s AND (%s = 0 OR id < %s) "
                 "ORDER BY id DESC")
            args: tuple = (arn, after, after)
        else:
            q, args = "SELECT * FROM wf_events WHERE execution = %s AND id > %s ORDER BY id", \
                (arn, after)
        if limit:
            q += f" LIMIT {int(limit)}"
        with self._db.transaction() as db:
            rows = db.execute(q, args).fetchall()
        return [HistoryEvent(r["id"], r["id"] - 1, r["timestamp"], r["type"],
                             json.loads(r["details"])) for r in rows]

    def running(self) -> list[Execution]:
        with self._db.transaction() as db:
            rows = db.execute("SELECT * FROM wf_executions WHERE status = %s "
                                    "ORDER BY start, seq", (RUNNING,)).fetchall()
        return [execution_from_row(r) for r in rows]

    # ------------------------------------------------------------------ leases

    shared = True

    def claim(self, arn: str, owner: str, ttl_s: float) -> bool:
        with self._db.transaction() as db:
            # Lock the execution first, in the order transition() takes its locks: a claim
            # never sees an execution as RUNNING while its end is being committed.
            row = db.execute("SELECT status FROM wf_executions WHERE arn = %s FOR SHARE",
                                   (arn,)).fetchone()
            if row is None or row["status"] != RUNNING:
                return False
            return db.execute(ACQUIRE, (lease_name(arn), owner, ttl_s)).fetchone() \
                is not None

    def release(self, arn: str, owner: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM cluster_leases WHERE name = %s AND holder = %s",
                             (lease_name(arn), owner))

    def resumable(self) -> list[Execution]:
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT e.* FROM wf_executions e LEFT JOIN cluster_leases l "
                "ON l.name = 'workflow:' || e.arn "
                "WHERE e.status = %s AND (l.name IS NULL OR l.expires_at < now()) "
                "ORDER BY e.start, e.seq", (RUNNING,)).fetchall()
        return [execution_from_row(r) for r in rows]

    def prune_leases(self) -> int:
        with self._db.transaction() as db:
            # Expired only: a live lease of a RUNNING execution is its holder's, and the
            # execution's row lock (taken by transition() before deleting its lease) orders
            # an end against this sweep.
            return db.execute(
                "DELETE FROM cluster_leases l WHERE l.name LIKE 'workflow:%%' "
                "AND l.expires_at < now() AND NOT EXISTS (SELECT 1 FROM wf_executions e "
                "WHERE 'workflow:' || e.arn = l.name AND e.status = %s)", (RUNNING,)).rowcount

    def close(self) -> None:
        self._db.close()
