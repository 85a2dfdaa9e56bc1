"""The workflow store: state machines, their executions and each execution's history.

`WorkflowStore` is the protocol (documented per method); `SQLiteWorkflowStore` keeps it in
workflows.db under the data directory (durable: Standard executions), `MemoryWorkflowStore`
(workflows_memory.py) in memory (Express executions, which Step Functions does not keep either). Both pass the
same contract suite (tests/unit/storage/test_workflow_store.py), so a PostgreSQL store for
the cluster work has a test to pass.

Invariant: a state transition is ONE call to `transition()`, i.e. one transaction: the
history events it appends and the execution's new cursor (where to resume) and status land
together or not at all. After a crash the cursor never disagrees with the history.

Ownership (decision 070): a RUNNING execution is driven by the engine holding its lease
(`claim`, `release`, `transition(owner=...)`). On a store several engines share (PostgreSQL,
`shared` True) a claim excludes every other owner until it lapses, and a transition by an
owner that lost the lease changes nothing. The SQLite and memory stores belong to one process:
every claim of a RUNNING execution succeeds and the owner is not checked.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from runner.errors import (
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
)
from runner.storage.sqlite import Transaction, open_database

RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED = (
    "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
STATUSES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED)


@dataclass(frozen=True)
class StateMachine:
    arn: str
    name: str
    definition: str
    type: str  # STANDARD | EXPRESS
    role_arn: str = ""
    created: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True)
class Execution:
    arn: str
    machine_arn: str
    name: str
    status: str
    input: str
    start: float
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    stop: float | None = None
    cursor: dict | None = None  # the engine's resume point; None once finished
    definition: str = ""  # the definition it started with: an update never changes a run
    trace: str = ""  # StartExecution's traceHeader (Lambda form): every task runs under it


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    previous_id: int
    timestamp: float
    type: str
    details: dict = field(default_factory=dict)


class WorkflowStore(Protocol):
    def create_machine(self, machine: StateMachine) -> StateMachine:
        """Store a new machine. StateMachineAlreadyExists if the name is taken by another
        definition or type; the same one again returns the stored machine (idempotent)."""

    def get_machine(self, arn: str) -> StateMachine:
        """StateMachineDoesNotExist if unknown."""

    def list_machines(self) -> list[StateMachine]:
        """Every machine, by name."""

    def update_machine(self, arn: str, definition: str | None = None,
                       role_arn: str | None = None) -> StateMachine:
        """Replace the definition (running executions keep the one they started with)."""

    def delete_machine(self, arn: str) -> None:
        """Remove the machine; its executions and histories stay readable."""

    def create_execution(self, execution: Execution, events: list[tuple[str, dict]]
                         ) -> tuple[Execution, bool]:
        """Store a new execution with its first events, in one transaction. An execution of
        the same name on the same machine with the same input is returned as it is, with
        False (start-by-name is idempotent); with another input, ExecutionAlreadyExists."""

    def get_execution(self, arn: str) -> Execution:
        """ExecutionDoesNotExist if unknown."""

    def list_executions(self, machine_arn: str, status: str | None = None) -> list[Execution]:
        """The machine's executions, newest first, optionally of one status."""

    def transition(self, arn: str, events: list[tuple[str, dict]], *, cursor: dict | None,
                   status: str = RUNNING, output: str | None = None, error: str | None = None,
                   cause: str | None = None, only_if_running: bool = True,
                   owner: str | None = None) -> bool:
        """Append `events` (type, details) and set the cursor and status, in one transaction.
        A status other than RUNNING also sets the stop date. With `only_if_running`, nothing
        happens (False) if the execution already finished (e.g. StopExecution won). With
        `owner` on a shared store, nothing happens (False) unless `owner` holds the
        execution's lease, checked in the same transaction: a node that lost the lease (it
        paused past the ttl and another took over) can never write over the new driver."""

    def history(self, arn: str, *, reverse: bool = False, after: int = 0,
                limit: int = 0) -> list[HistoryEvent]:
        """Events in id order (or reversed), ids beyond `after` (before it, reversed)."""

    def running(self) -> list[Execution]:
        """Every execution still RUNNING: what a restarted server resumes."""

    # Leases: which engine drives a RUNNING execution (decision 070).
    shared: bool  # True: several engines open it, and claims exclude each other

    def claim(self, arn: str, owner: str, ttl_s: float) -> bool:
        """Take the lease of a RUNNING execution for `ttl_s` seconds, or renew it if `owner`
        holds it. False if the execution is not RUNNING (or unknown), or, on a shared store,
        another owner's lease has not expired."""

    def release(self, arn: str, owner: str) -> None:
        """Give the lease up if `owner` holds it (any engine may claim the execution next)."""

    def resumable(self) -> list[Execution]:
        """RUNNING executions no live lease holds, oldest first: those an engine may claim
        and resume (a dead node's). Unshared stores: every RUNNING execution."""

    def prune_leases(self) -> int:
        """Delete the expired leases of executions no longer RUNNING (or gone): those an end
        did not remove (written before ends removed them, or left by a failed release);
        how many. Unshared stores keep no lease rows: 0."""

    def clock(self) -> float:
        """Seconds since the epoch by the clock every engine sharing the store agrees on: due
        times (a Wait's end, a retry delay's, TimeoutSeconds' deadline from the start) are
        computed and compared with it, so an execution adopted by another node wakes on time
        whatever the skew between the hosts (decision 079). Unshared stores: this host's
        time.time(); PostgreSQL: the database's clock (postgres/clock.py)."""

    def close(self) -> None:
        """Release the database."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (
    arn TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, definition TEXT NOT NULL,
    type TEXT NOT NULL, role_arn TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY, machine_arn TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    input TEXT NOT NULL, output TEXT, error TEXT, cause TEXT, start REAL NOT NULL, stop REAL,
    cursor TEXT, definition TEXT NOT NULL DEFAULT '', trace TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS executions_by_machine ON executions (machine_arn, start);
CREATE INDEX IF NOT EXISTS executions_running ON executions (status);
CREATE TABLE IF NOT EXISTS events (
    execution TEXT NOT NULL, id INTEGER NOT NULL, timestamp REAL NOT NULL, type TEXT NOT NULL,
    details TEXT NOT NULL, PRIMARY KEY (execution, id)
);
"""


class SQLiteWorkflowStore:
    """workflows.db under the data directory; thread-safe behind one lock."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self._db = open_database(os.path.join(data_dir, "workflows.db"), SCHEMA)
        self._lock = threading.Lock()
        # A workflows.db from before trace headers: the column, empty for executions it holds.
        if "trace" not in {r["name"] for r in self._db.execute("PRAGMA table_info(executions)")}:
            self._db.execute("ALTER TABLE executions ADD COLUMN trace TEXT NOT NULL DEFAULT ''")

    def create_machine(self, machine: StateMachine) -> StateMachine:
        with self._lock, Transaction(self._db) as db:
            row = db.execute("SELECT * FROM machines WHERE name = ?", (machine.name,)).fetchone()
            if row is not None:
                return existing_machine(machine_from_row(row), machine)
            db.execute("INSERT INTO machines VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (machine.arn, machine.name, machine.definition, machine.type,
                        machine.role_arn, machine.created, machine.updated))
        return machine

    def get_machine(self, arn: str) -> StateMachine:
        with self._lock:
            row = self._db.execute("SELECT * FROM machines WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        return machine_from_row(row)

    def list_machines(self) -> list[StateMachine]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM machines ORDER BY name").fetchall()
        return [machine_from_row(r) for r in rows]

    def update_machine(self, arn, definition=None, role_arn=None) -> StateMachine:
        with self._lock, Transaction(self._db) as db:
            row = db.execute("SELECT * FROM machines WHERE arn = ?", (arn,)).fetchone()
            if row is None:
                raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
            m = replace(machine_from_row(row), updated=time.time())
            if definition is not None:
                m = replace(m, definition=definition)
            if role_arn is not None:
                m = replace(m, role_arn=role_arn)
            db.execute("UPDATE machines SET definition = ?, role_arn = ?, updated = ? "
                       "WHERE arn = ?", (m.definition, m.role_arn, m.updated, arn))
        return m

    def delete_machine(self, arn: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM machines WHERE arn = ?", (arn,))

    def create_execution(self, execution, events):
        with self._lock, Transaction(self._db) as db:
            row = db.execute("SELECT * FROM executions WHERE arn = ?", (execution.arn,)).fetchone()
            if row is not None:
                return existing_execution(execution_from_row(row), execution)
            db.execute("INSERT INTO executions (arn, machine_arn, name, status, input, start, "
                       "cursor, definition, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (execution.arn, execution.machine_arn, execution.name, execution.status,
                        execution.input, execution.start, json.dumps(execution.cursor),
                        execution.definition, execution.trace))
            self._append(db, execution.arn, events)
        return execution, True

    def get_execution(self, arn: str) -> Execution:
        with self._lock:
            row = self._db.execute("SELECT * FROM executions WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
        return execution_from_row(row)

    def list_executions(self, machine_arn, status=None):
        q, args = "SELECT * FROM executions WHERE machine_arn = ?", [machine_arn]
        if status:
            q, args = q + " AND status = ?", args + [status]
        with self._lock:
            rows = self._db.execute(q + " ORDER BY start DESC, rowid DESC", args).fetchall()
        return [execution_from_row(r) for r in rows]

    def transition(self, arn, events, *, cursor, status=RUNNING, output=None, error=None,
                   cause=None, only_if_running=True, owner=None) -> bool:
        with self._lock, Transaction(self._db) as db:
            row = db.execute("SELECT status FROM executions WHERE arn = ?", (arn,)).fetchone()
            if row is None:
                raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
            if only_if_running and row["status"] != RUNNING:
                return False
            self._append(db, arn, events)
            db.execute("UPDATE executions SET cursor = ?, status = ?, output = COALESCE(?, output),"
                       " error = COALESCE(?, error), cause = COALESCE(?, cause), stop = ? "
                       "WHERE arn = ?",
                       (json.dumps(cursor) if cursor is not None else None, status, output,
                        error, cause, None if status == RUNNING else time.time(), arn))
        return True

    def _append(self, db, arn: str, events) -> None:
        if not events:
            return
        last = db.execute("SELECT COALESCE(MAX(id), 0) FROM events WHERE execution = ?",
                          (arn,)).fetchone()[0]
        now = time.time()
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                       [(arn, last + i + 1, now, t, json.dumps(d)) for i, (t, d) in enumerate(events)])

    def history(self, arn, *, reverse=False, after=0, limit=0):
        self.get_execution(arn)
        if reverse:
            q = "SELECT * FROM events WHERE execution = ? AND (? = 0 OR id < ?) ORDER BY id DESC"
            args: tuple = (arn, after, after)
        else:
            q, args = "SELECT * FROM events WHERE execution = ? AND id > ? ORDER BY id", (arn, after)
        if limit:
            q += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        return [HistoryEvent(r["id"], r["id"] - 1, r["timestamp"], r["type"],
                             json.loads(r["details"])) for r in rows]

    def running(self) -> list[Execution]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM executions WHERE status = ? ORDER BY start",
                                    (RUNNING,)).fetchall()
        return [execution_from_row(r) for r in rows]

    # One process owns workflows.db (the data directory's lock): no lease to keep.
    shared = False

    def claim(self, arn: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            row = self._db.execute("SELECT status FROM executions WHERE arn = ?",
                                   (arn,)).fetchone()
        return row is not None and row["status"] == RUNNING

    def release(self, arn: str, owner: str) -> None:
        pass

    def resumable(self) -> list[Execution]:
        return self.running()

    def prune_leases(self) -> int:
        return 0

    def clock(self) -> float:
        return time.time()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def existing_machine(old: StateMachine, machine: StateMachine) -> StateMachine:
    """CreateStateMachine of a name that exists: idempotent when definition and type are the
    same (the existing machine is the answer), else StateMachineAlreadyExists. Every store."""
    if (old.definition, old.type) != (machine.definition, machine.type):
        raise StateMachineAlreadyExists(
            f"State Machine Already Exists: '{old.arn}' with another definition or "
            "type; update it (UpdateStateMachine) or pick another name")
    return old


def existing_execution(old: Execution, execution: Execution) -> tuple[Execution, bool]:
    """StartExecution of a name that exists: idempotent with the same input (the existing
    execution, not started again), else ExecutionAlreadyExists. Every store."""
    if old.input != execution.input:
        raise ExecutionAlreadyExists(
            f"Execution Already Exists: '{execution.arn}' with another input; "
            "give the new execution another name")
    return old, False


def machine_from_row(r) -> StateMachine:
    """A state machine from a table row (by column name; the PostgreSQL store uses it too)."""
    return StateMachine(r["arn"], r["name"], r["definition"], r["type"], r["role_arn"],
                        r["created"], r["updated"])


def execution_from_row(r) -> Execution:
    """An execution from a table row (by column name; the PostgreSQL store uses it too)."""
    return Execution(r["arn"], r["machine_arn"], r["name"], r["status"], r["input"], r["start"],
                     r["output"], r["error"], r["cause"], r["stop"],
                     json.loads(r["cursor"]) if r["cursor"] else None, r["definition"], r["trace"])


def encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
