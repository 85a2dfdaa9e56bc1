"""The workflow engine: state machines and executions, as the Step Functions API sees them.

    engine = WorkflowEngine(data_dir, runner_invoke)
    engine.start()                     # resumes every Standard execution a crash interrupted
    m = engine.create_machine("orders", definition_json)
    ex = engine.start_execution(m.arn, input='{"id": 1}')
    engine.describe_execution(ex.arn).status

Standard executions live in the SQLite store (durable; one transaction per transition), or
in a cluster in the shared PostgreSQL one, and each runs on a thread of its own, driven by
the engine holding its lease (leases.py: exactly one engine per execution; a dead node's
executions are resumed by the others). Express executions live in memory:
StartSyncExecution runs one on the caller's thread and returns it finished; StartExecution
runs it in the background. Names and ARNs follow Step Functions' (region us-east-1, account 123456789012:
there is one tenant and no IAM), so SDKs parse them.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
import uuid

from runner.errors import (
    InvalidArn,
    InvalidExecutionInput,
    InvalidName,
    InvalidParameter,
    StateMachineTypeNotSupported,
)
from runner.storage.workflows import (
    ABORTED,
    FAILED,
    RUNNING,
    Execution,
    SQLiteWorkflowStore,
    StateMachine,
    WorkflowStore,
)
from runner.storage.workflows_memory import MemoryWorkflowStore
from runner.workflows import asl
from runner.workflows.execution_driver import ExecutionDriver
from runner.workflows.interpreter import iso
from runner.workflows.leases import LEASE_S, LeaseKeeper

log = logging.getLogger(__name__)

REGION, ACCOUNT = "us-east-1", "123456789012"
PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:"
TYPES = ("STANDARD", "EXPRESS")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MAX_INPUT = 256 * 1024


@functools.lru_cache(maxsize=256)
def _parsed(definition: str) -> dict:
    """The validated definition, parsed once per text: a start must not re-validate (Express
    executions are the hot path). Shared read-only by every run of it."""
    return asl.validate(definition)


def machine_arn(name: str) -> str:
    return f"{PREFIX}stateMachine:{name}"


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidName(what, f"Invalid Name: {name!r}; use 1..80 letters, digits, '-', '_' "
                          "or '.'")
    return name


class WorkflowEngine(ExecutionDriver):
    def __init__(self, data_dir: str | None, invoke, *, store: WorkflowStore | None = None,
                 on_status=None, owner: str | None = None, lease_s: float = LEASE_S) -> None:
        """`invoke(name, payload, qualifier=None)` runs a function: Runner.invoke.
        `on_status(machine_name, status)` hears each execution's start ("started") and end
        (succeeded, failed, timed_out, aborted): the Runner's metrics (workflow_execution).
        `owner` names this engine in the executions' leases (a cluster: the node id; unique
        per process start, never reused); `lease_s` is their ttl."""
        self._on_status = on_status or (lambda machine, status: None)
        self.store = store if store is not None else SQLiteWorkflowStore(data_dir)
        self.express = MemoryWorkflowStore()
        self.invoke = invoke
        self.owner = owner or f"engine-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        # arn -> (thread, stop, store). The thread is None while the run is reserved (its
        # lease being claimed): a reservation is what keeps one engine from driving an
        # execution twice (a start and the keeper's adoption racing).
        self._runs: dict[str, tuple[threading.Thread | None, threading.Event, WorkflowStore]] = {}
        self._closing = False
        self._keeper = LeaseKeeper(self, lease_s)
        self.lease_s = lease_s

    # ------------------------------------------------------------------ machines

    def resolve(self, name_or_arn: str) -> StateMachine:
        """A machine by ARN or by name (the CLI's)."""
        if not name_or_arn:
            raise InvalidArn("stateMachineArn", "is required")
        if name_or_arn.startswith("arn:"):
            if not name_or_arn.startswith(f"{PREFIX}stateMachine:"):
                raise InvalidArn("stateMachineArn", f"Invalid Arn: {name_or_arn!r}; expected "
                                 f"{PREFIX}stateMachine:NAME")
            return self.store.get_machine(name_or_arn)
        return self.store.get_machine(machine_arn(name_or_arn))

    def create_machine(self, name: str, definition: str, type: str = "STANDARD",
                       role_arn: str = "") -> StateMachine:
        check_name(name, "name")
        if type not in TYPES:
            raise InvalidParameter("type", f"{type!r} is not one of {', '.join(TYPES)}")
        asl.validate(definition)
        now = self.store.clock()
        return self.store.create_machine(StateMachine(machine_arn(name), name, definition, type,
                                                      role_arn, now, now))

    def update_machine(self, arn: str, definition: str | None = None,
                       role_arn: str | None = None) -> StateMachine:
        self.resolve(arn)
        if definition is not None:
            asl.validate(definition)
        return self.store.update_machine(self.resolve(arn).arn, definition, role_arn)

    def delete_machine(self, arn: str) -> None:
        self.store.delete_machine(self.resolve(arn).arn)

    def list_machines(self) -> list[StateMachine]:
        return self.store.list_machines()

    @staticmethod
    def validate(definition: str) -> None:
        asl.validate(definition)

    # ------------------------------------------------------------------ executions

    def _store_for(self, execution_arn: str) -> WorkflowStore:
        if not execution_arn.startswith(PREFIX):
            raise InvalidArn("executionArn", f"Invalid Arn: {execution_arn!r}; expected "
                             f"{PREFIX}execution:MACHINE:NAME")
        return self.express if execution_arn.startswith(f"{PREFIX}express:") else self.store

    def start_execution(self, machine: str, name: str | None = None, input: str | None = None,
                        *, sync: bool = False, trace: str = "") -> Execution:
        """Start (or, by name, find) an execution. `trace` (Lambda's X-Ray form, already
        validated: invocation/trace.py) is kept with it, and every task invokes under it."""
        m = self.resolve(machine)
        if sync and m.type != "EXPRESS":
            raise StateMachineTypeNotSupported(
                "stateMachineArn", "StartSyncExecution runs EXPRESS state machines only; use "
                "StartExecution for a STANDARD one")
        name = check_name(name, "name") if name else str(uuid.uuid4())
        text = input if input is not None else "{}"
        if len(text.encode()) > MAX_INPUT:
            raise InvalidExecutionInput("input", f"is over {MAX_INPUT} bytes")
        try:
            value = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidExecutionInput("input", f"Invalid State Machine Execution Input: {exc}; "
                                        "give a JSON document") from None
        definition = _parsed(m.definition)
        if m.type == "EXPRESS":
            arn = f"{PREFIX}express:{m.name}:{name}:{uuid.uuid4()}"
            store = self.express
        else:
            arn = f"{PREFIX}execution:{m.name}:{name}"
            store = self.store
        now = store.clock()  # the start TimeoutSeconds counts from, on the store's clock
        cursor = {"state": definition["StartAt"], "input": value}
        ex, created = store.create_execution(
            Execution(arn, m.arn, name, RUNNING, text, now, cursor=cursor,
                      definition=m.definition, trace=trace),
            [("ExecutionStarted", {"input": text, "roleArn": m.role_arn or
                                   f"arn:aws:iam::{ACCOUNT}:role/runner"})])
        if not created:
            return ex  # start-by-name is idempotent
        self._on_status(m.name, "started")
        if sync:
            self._run(store, ex, definition, threading.Event())
            return store.get_execution(arn)
        # The lease is taken just after the COMMIT that created the execution. Another
        # engine adopting it in between (its keeper saw a RUNNING execution without a lease)
        # is the only way it is not ours, and then that engine drives it: still exactly one.
        self._drive(store, ex, definition, fresh=True)
        return ex

    def _context(self, ex: Execution) -> dict:
        """The execution's context object ($$ in paths), as a Run sees it."""
        machine_name = ex.machine_arn.rsplit(":", 1)[1]
        return {
            "Execution": {"Id": ex.arn, "Input": json.loads(ex.input), "Name": ex.name,
                          "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/runner",
                          "StartTime": iso(ex.start), "RedriveCount": 0},
            "StateMachine": {"Id": ex.machine_arn, "Name": machine_name},
            "Task": {},
        }

    def describe_execution(self, arn: str) -> Execution:
        return self._store_for(arn).get_execution(arn)

    def list_executions(self, machine: str, status: str | None = None) -> list[Execution]:
        m = self.resolve(machine)
        store = self.express if m.type == "EXPRESS" else self.store
        return store.list_executions(m.arn, status)

    def history(self, arn: str, *, reverse: bool = False, after: int = 0, limit: int = 0):
        return self._store_for(arn).history(arn, reverse=reverse, after=after, limit=limit)

    def stop_execution(self, arn: str, error: str | None = None, cause: str | None = None
                       ) -> Execution:
        store = self._store_for(arn)
        ex = store.get_execution(arn)
        if ex.status == RUNNING:
            details = {k: v for k, v in (("error", error), ("cause", cause)) if v}
            store.transition(arn, [("ExecutionAborted", details)], cursor=None, status=ABORTED,
                             error=error, cause=cause)
            self._on_status(ex.machine_arn.rsplit(":", 1)[1], ABORTED.lower())
            with self._lock:
                run = self._runs.get(arn)
            if run is not None:
                run[1].set()
            # Driven by another node: its keeper sees the execution ended at its next renewal.
        return store.get_execution(arn)

    def wait(self, arn: str, timeout: float = 30.0) -> Execution:
        """The execution once it is no longer RUNNING (or as it is at the timeout)."""
        end = time.monotonic() + timeout
        while True:
            ex = self.describe_execution(arn)
            if ex.status != RUNNING or time.monotonic() > end:
                return ex
            with self._lock:
                run = self._runs.get(arn)
            if run is not None and run[0] is not None:
                run[0].join(min(0.05, max(0.0, end - time.monotonic())))
            else:
                time.sleep(0.01)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> int:
        """Resume every RUNNING Standard execution no live lease holds (after a restart; in a
        cluster, those of dead nodes), and from now on adopt such executions every lease
        renewal (leases.py); returns how many were resumed now."""
        resumed = self.adopt()
        self._keeper.adopting = True
        self._keeper.ensure_running()
        if resumed:
            log.info("resumed %d workflow executions", resumed)
        return resumed

    def adopt(self) -> int:
        """Drive each RUNNING execution whose lease is free or lapsed; how many it took."""
        taken = 0
        for ex in self.store.resumable():
            with self._lock:
                if self._closing:
                    break
                if ex.arn in self._runs:
                    continue
            try:
                definition = _parsed(ex.definition)
            except Exception as exc:  # cannot happen for a stored definition; do not loop
                self.store.transition(ex.arn, [("ExecutionFailed", {"error": "States.Runtime",
                                                                   "cause": str(exc)})],
                                      cursor=None, status=FAILED, error="States.Runtime",
                                      cause=str(exc))
                continue
            taken += self._drive(self.store, ex, definition)
        return taken

    def close(self, timeout: float = 5.0, *, release: bool = True) -> None:
        """Stop the threads without ending their executions: a restart resumes them, and with
        `release` (a clean shutdown) other engines on a shared store at once, the executions
        whose thread has ended (a thread still invoking after `timeout` keeps its lease until
        it lapses or the node leaves the cluster, NodeStore.leave; its late result is refused
        either way). `release=False` leaves every lease to lapse, as a killed node does."""
        self._keeper.stop()
        with self._lock:
            self._closing = True
            runs = list(self._runs.items())
        for _, (_, stop, _) in runs:
            stop.set()
        for _, (t, _, _) in runs:
            if t is not None:
                t.join(timeout)
        if release:
            for arn, (t, _, store) in runs:
                if t is None or not t.is_alive():
                    self._release(store, arn)
        self.store.close()
