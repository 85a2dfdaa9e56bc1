"""The workflow store in memory, for Express executions (Step Functions keeps none either):
the `WorkflowStore` contract of workflows.py, run by the same suite
(tests/unit/storage/test_workflow_store.py). Nothing survives a restart."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from runner.errors import (
    ExecutionDoesNotExist,
    StateMachineDoesNotExist,
)
from runner.storage.workflows import (
    RUNNING,
    Execution,
    HistoryEvent,
    StateMachine,
    existing_execution,
    existing_machine,
)


class MemoryWorkflowStore:
    """The same contract in memory, for Express executions: nothing survives a restart, and
    only the newest `keep` finished executions are kept."""

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._machines: dict[str, StateMachine] = {}
        self._executions: dict[str, Execution] = {}
        self._events: dict[str, list[HistoryEvent]] = {}
        self._finished: list[str] = []
        self.keep = keep

    def create_machine(self, machine):
        with self._lock:
            for old in self._machines.values():
                if old.name == machine.name:
                    return existing_machine(old, machine)
            self._machines[machine.arn] = machine
        return machine

    def get_machine(self, arn):
        with self._lock:
            m = self._machines.get(arn)
        if m is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        return m

    def list_machines(self):
        with self._lock:
            return sorted(self._machines.values(), key=lambda m: m.name)

    def update_machine(self, arn, definition=None, role_arn=None):
        m = replace(self.get_machine(arn), updated=time.time())
        if definition is not None:
            m = replace(m, definition=definition)
        if role_arn is not None:
            m = replace(m, role_arn=role_arn)
        with self._lock:
            self._machines[arn] = m
        return m

    def delete_machine(self, arn):
        with self._lock:
            self._machines.pop(arn, None)

    def create_execution(self, execution, events):
        with self._lock:
            old = self._executions.get(execution.arn)
            if old is not None:
                return existing_execution(old, execution)
            self._executions[execution.arn] = execution
            self._events[execution.arn] = []
            self._append(execution.arn, events)
        return execution, True

    def get_execution(self, arn):
        with self._lock:
            e = self._executions.get(arn)
        if e is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
        return e

    def list_executions(self, machine_arn, status=None):
        with self._lock:
            out = [e for e in self._executions.values() if e.machine_arn == machine_arn
                   and (not status or e.status == status)]
        return sorted(out, key=lambda e: e.start, reverse=True)

    def transition(self, arn, events, *, cursor, status=RUNNING, output=None, error=None,
                   cause=None, only_if_running=True, owner=None):
        with self._lock:
            e = self._executions.get(arn)
            if e is None:
                raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
            if only_if_running and e.status != RUNNING:
                return False
            self._append(arn, events)
            self._executions[arn] = replace(
                e, cursor=cursor, status=status, output=output if output is not None else e.output,
                error=error if error is not None else e.error,
                cause=cause if cause is not None else e.cause,
                stop=None if status == RUNNING else time.time())
            if status != RUNNING:
                self._finished.append(arn)
                while len(self._finished) > self.keep:
                    gone = self._finished.pop(0)
                    self._executions.pop(gone, None)
                    self._events.pop(gone, None)
        return True

    def _append(self, arn, events):
        log = self._events[arn]
        now = time.time()
        for t, d in events:
            n = len(log) + 1
            log.append(HistoryEvent(n, n - 1, now, t, d))

    def history(self, arn, *, reverse=False, after=0, limit=0):
        self.get_execution(arn)
        with self._lock:
            evs = list(self._events.get(arn, []))
        if reverse:
            evs = [e for e in reversed(evs) if not after or e.id < after]
        else:
            evs = [e for e in evs if e.id > after]
        return evs[:limit] if limit else evs

    def running(self):
        with self._lock:
            return sorted((e for e in self._executions.values() if e.status == RUNNING),
                          key=lambda e: e.start)

    shared = False  # one process's memory

    def claim(self, arn, owner, ttl_s):
        with self._lock:
            e = self._executions.get(arn)
        return e is not None and e.status == RUNNING

    def release(self, arn, owner):
        pass

    def resumable(self):
        return self.running()

    def prune_leases(self):
        return 0

    def clock(self) -> float:
        return time.time()

    def close(self):
        pass
