"""Parallel and Map states: child runs on threads of their own, and how a failure or a stop
travels between them and the parent.

Split from interpreter.py (the `Run` and its single-thread states): `Run` inherits these state
handlers from `BranchingStates`. A child `Run` shares the parent's emit lock and root, and its
stop flag is chained to the parent's, so StopExecution or a sibling's failure reaches every
branch at its next state. At the top level each finished branch or iteration is checkpointed in
the cursor ("done"), so a resumed Parallel or Map runs only the unfinished ones (decision 061).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runner.errors import WorkflowFailure
from runner.workflows import intrinsics, paths

MAP_THREADS = 40  # MaxConcurrency 0 (no limit) still runs at most this many iterations at once


class Aborted(Exception):
    """StopExecution (or a sibling branch's failure) ended this run."""


class TimedOut(Exception):
    """The machine's TimeoutSeconds passed."""


class Final(Exception):
    """A Fail state or an unmatched Choice: not retried or caught in its own state, but
    caught like any failure by an enclosing Parallel or Map state's Catch."""

    def __init__(self, failure: WorkflowFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _Tolerated:
    def __init__(self, value: dict) -> None:
        self.value = value


class _ChainedStop(threading.Event):
    """A child's stop flag: set on its own, or when the parent's is."""

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self.parent.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(timeout) or self.parent.is_set()


def _pack(result: Any) -> dict:
    return {"tolerated": result.value} if isinstance(result, _Tolerated) else {"ok": result}


def _unpack(packed: dict) -> Any:
    return _Tolerated(packed["tolerated"]) if "tolerated" in packed else packed["ok"]


def failure_of(exc: BaseException) -> WorkflowFailure:
    return exc.failure if isinstance(exc, Final) else exc  # type: ignore[return-value]


def reraise(exc: BaseException):
    if isinstance(exc, Final):
        raise exc.failure  # a nested Fail fails the Parallel/Map, which may catch it
    raise exc


class BranchingStates:
    """The Parallel and Map state handlers of `Run` (which supplies _ctx, _effective, _journal,
    _finish, _machine, cursor, emit and stop)."""

    def _children(self, jobs: list, limit: int, cursor: dict, top: bool) -> list:
        """Run `jobs` (callables) on up to `limit` threads; the first failure stops the rest
        (they see Aborted at their next state) and is raised. At the top level each finished
        job's result is checkpointed in the cursor ("done"), so that a resumed Parallel or
        Map state runs only the branches and iterations that had not finished."""
        done = dict(cursor.get("done") or {}) if top else {}
        child = type(self)(self.definition, self.invoke, self.emit, self.context,
                           _ChainedStop(self.stop), self.deadline, self.clock)
        child._emit_lock = self._emit_lock
        child.root = self.root

        def finished(i: int, result) -> None:
            if not top:
                return
            with self._emit_lock:
                done[str(i)] = _pack(result)
                self.cursor = {**self.cursor, "done": dict(done)}
                if not self.emit([], self.cursor):
                    raise Aborted()

        def run(i: int, job):
            try:
                result = job(child)
            finally:
                child.flush()  # this pool thread's deferred events, before it takes another job
            finished(i, result)
            return result

        todo = [(i, job) for i, job in enumerate(jobs) if str(i) not in done]
        results: dict[int, Any] = {int(i): _unpack(v) for i, v in done.items()}
        first = None
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, min(limit, len(todo)))) as pool:
                futures = [(i, pool.submit(run, i, job)) for i, job in todo]
                for i, fut in futures:
                    try:
                        results[i] = fut.result()
                    except (WorkflowFailure, Final, Aborted, TimedOut) as exc:
                        if first is None:
                            first = exc
                            child.stop.set()
                        results[i] = exc
        ordered = [results[i] for i in range(len(jobs))]
        return ordered if first is None else ordered + [first]

    def _parallel(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        value = self._effective(s, raw, ctx)
        self._journal([("ParallelStateStarted", {})], cursor, top)
        jobs = [lambda run, b=b: run._machine(b, value) for b in s["Branches"]]
        results = self._children(jobs, len(jobs), cursor, top)
        if len(results) > len(jobs):
            self._journal([("ParallelStateFailed", {})], self.cursor, top)
            reraise(results[-1])
        self._journal([("ParallelStateSucceeded", {})], self.cursor, top)
        return self._finish(s, raw, results, ctx)

    def _map(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        value = paths.input_path(s.get("InputPath", "$"), raw, ctx)
        items = paths.select(s.get("ItemsPath", "$"), value, ctx, field="ItemsPath")
        if not isinstance(items, list):
            raise WorkflowFailure("States.Runtime", f"ItemsPath of Map state {name!r} must "
                                  f"select an array, not {type(items).__name__}")
        limit = s.get("MaxConcurrency", 0)
        if "MaxConcurrencyPath" in s:
            limit = int(paths.select(s["MaxConcurrencyPath"], value, ctx))
        tolerated_n = s.get("ToleratedFailureCount")
        if "ToleratedFailureCountPath" in s:
            tolerated_n = paths.select(s["ToleratedFailureCountPath"], value, ctx)
        tolerated_pct = s.get("ToleratedFailurePercentage")
        if "ToleratedFailurePercentagePath" in s:
            tolerated_pct = paths.select(s["ToleratedFailurePercentagePath"], value, ctx)
        tolerant = tolerated_n is not None or tolerated_pct is not None
        selector = s.get("ItemSelector", s.get("Parameters"))
        proc = s.get("ItemProcessor", s.get("Iterator"))
        self._journal([("MapStateStarted", {"length": len(items)})], cursor, top)

        def job(i, item):
            def run(child):
                mctx = {"Map": {"Item": {"Index": i, "Value": item}}}
                v = item
                if selector is not None:
                    v = paths.apply_template(selector, value, {**ctx, **mctx}, intrinsics.evaluate)
                child._journal([("MapIterationStarted", {"name": name, "index": i})], None, False)
                try:
                    out = child._machine(proc, v, mctx)
                except (WorkflowFailure, Final) as exc:
                    child._journal([("MapIterationFailed", {"name": name, "index": i})], None, False)
                    if tolerant:
                        f = failure_of(exc)
                        return _Tolerated({"Error": f.error, "Cause": f.cause})
                    raise
                child._journal([("MapIterationSucceeded", {"name": name, "index": i})], None, False)
                return out
            return run

        jobs = [job(i, item) for i, item in enumerate(items)]
        results = self._children(jobs, limit or MAP_THREADS, cursor, top) if jobs else []
        if len(results) > len(jobs):
            self._journal([("MapStateFailed", {})], self.cursor, top)
            reraise(results[-1])
        failed = sum(isinstance(r, _Tolerated) for r in results)
        if failed and (tolerated_n is None or failed > tolerated_n) and (
                tolerated_pct is None or failed * 100 > tolerated_pct * len(items)):
            self._journal([("MapStateFailed", {})], self.cursor, top)
            raise WorkflowFailure("States.ExceedToleratedFailureThreshold",
                                  f"{failed} of {len(items)} items failed in Map state {name!r}")
        results = [r.value if isinstance(r, _Tolerated) else r for r in results]
        self._journal([("MapStateSucceeded", {})], self.cursor, top)
        return self._finish(s, raw, results, ctx)

