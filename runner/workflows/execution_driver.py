"""Driving one workflow execution: the thread it runs on, under its lease, to a recorded end.

Split from engine.py (machines, executions and the engine's life cycle, as the Step Functions
API sees them): `WorkflowEngine` inherits these from `ExecutionDriver`. Invariants: an engine
reserves an execution in `_runs` before claiming its lease, so a start and the lease keeper's
adoption never drive it twice; the end is recorded in one store transaction fenced by the
owner, so a run whose lease moved to another engine cannot record anything.
"""

from __future__ import annotations

import functools
import json
import logging
import threading

from runner.errors import WorkflowFailure
from runner.storage.workflows import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    Execution,
    WorkflowStore,
    encode,
)
from runner.workflows.branches import Aborted, TimedOut
from runner.workflows.interpreter import Run, run_to_end

log = logging.getLogger(__name__)


class ExecutionDriver:
    """The execution-driving half of `WorkflowEngine`, which supplies owner, lease_s, invoke,
    _lock, _runs, _closing, _keeper, _on_status and _context(ex)."""

    def _drive(self, store: WorkflowStore, ex: Execution, definition: dict, *,
               fresh: bool = False) -> bool:
        """Run `ex` on a thread of its own if this engine gets its lease; False if it already
        drives it, another engine holds it, it is no longer RUNNING, or the engine closes.
        `fresh`: `ex` was just created here (else it is read again once the lease is ours:
        the cursor its last driver committed, which it can no longer change)."""
        stop = threading.Event()
        with self._lock:
            if self._closing or ex.arn in self._runs:
                return False
            self._runs[ex.arn] = (None, stop, store)
        self._keeper.ensure_running()
        try:
            ours = store.claim(ex.arn, self.owner, self.lease_s)
            if ours and not fresh:
                ex = store.get_execution(ex.arn)
                ours = ex.status == RUNNING
        except Exception:
            log.exception("workflow execution %s: could not take its lease", ex.arn)
            ours = False
        t = threading.Thread(target=self._run, args=(store, ex, definition, stop),
                             name=f"workflow-{ex.name[:20]}", daemon=True)
        with self._lock:
            closing = self._closing
            if ours and not closing:
                # Started under the lock: wait() and close() never see an unstarted thread.
                self._runs[ex.arn] = (t, stop, store)
                t.start()
                return True
            self._runs.pop(ex.arn, None)
        if ours:  # the engine closed meanwhile
            self._release(store, ex.arn)
        return False

    def _release(self, store: WorkflowStore, arn: str) -> None:
        try:
            store.release(arn, self.owner)
        except Exception:  # it lapses after its ttl instead
            log.warning("workflow execution %s: could not release its lease", arn)

    def driven(self) -> list[tuple[str, WorkflowStore, threading.Event]]:
        """(arn, store, stop) of every execution this engine drives (the keeper renews them)."""
        with self._lock:
            return [(arn, store, stop) for arn, (_, stop, store) in self._runs.items()]

    def _run(self, store: WorkflowStore, ex: Execution, definition: dict,
             stop: threading.Event) -> None:
        context = self._context(ex)
        deadline = ex.start + definition["TimeoutSeconds"] if "TimeoutSeconds" in definition else None

        def emit(events, cursor):
            return store.transition(ex.arn, events, cursor=cursor, owner=self.owner)

        # Only a traced execution passes trace_id: stand-in invokes (tests) need not know it.
        invoke = functools.partial(self.invoke, trace_id=ex.trace) if ex.trace else self.invoke
        run = Run(definition, invoke, emit, context, stop, deadline, store.clock)
        try:
            self._finish(store, ex, definition, run)
        except Exception:
            # Closing: the store or the Runner may already be closed under a run that was
            # still invoking; the execution stays RUNNING in the store and resumes next start.
            if not self._closing:
                log.exception("workflow execution %s: could not record its end", ex.arn)
        finally:
            with self._lock:
                self._runs.pop(ex.arn, None)
                closing = self._closing
            # Ended, aborted, fenced (a no-op then) or failed to record its end (the lease goes
            # so that a keeper resumes it). Closing: close() decides.
            if not closing:
                self._release(store, ex.arn)

    def _finish(self, store: WorkflowStore, ex: Execution, definition: dict, run: Run) -> None:
        """Run to the end and record how it ended (one transaction)."""
        ended = self._record_end(store, ex, definition, run)
        if ended is not None:
            self._on_status(ex.machine_arn.rsplit(":", 1)[1], ended.lower())

    def _record_end(self, store: WorkflowStore, ex: Execution, definition: dict,
                    run: Run) -> str | None:
        """The status the execution ended with (None: aborted elsewhere or closing)."""
        try:
            out = run_to_end(run, ex.cursor, json.loads(ex.input))
        except WorkflowFailure as f:
            return self._end(store, ex, FAILED, [("ExecutionFailed", {"error": f.error,
                                                                       "cause": f.cause})],
                             error=f.error, cause=f.cause)
        except TimedOut:
            cause = f"The execution ran past TimeoutSeconds={definition.get('TimeoutSeconds')}"
            return self._end(store, ex, TIMED_OUT, [("ExecutionTimedOut", {
                "error": "States.Timeout", "cause": cause})], error="States.Timeout", cause=cause)
        except Aborted:
            return None  # StopExecution wrote the end, or the server is closing (resumed later)
        except Exception as exc:
            if self._closing:
                raise
            # A bug (or a failure of the Runner under it): the execution fails, the server
            # stays up, and the log has the traceback.
            log.exception("workflow execution %s failed inside the engine", ex.arn)
            cause = f"{type(exc).__name__}: {exc}"
            return self._end(store, ex, FAILED, [("ExecutionFailed", {
                "error": "States.Runtime", "cause": cause})], error="States.Runtime", cause=cause)
        else:
            text = encode(out)
            return self._end(store, ex, SUCCEEDED, [("ExecutionSucceeded", {"output": text})],
                             output=text)

    def _end(self, store: WorkflowStore, ex: Execution, status: str, events, **fields
             ) -> str | None:
        """Record the end; None if it was not ours to record (stopped, or the lease moved)."""
        if store.transition(ex.arn, events, cursor=None, status=status, owner=self.owner,
                            **fields):
            return status
        return None
