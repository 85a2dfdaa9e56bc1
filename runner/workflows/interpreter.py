"""The interpreter: runs a validated definition's states and records what happens.

One `Run` per execution. The top-level machine advances a *cursor* (state name, its raw
input, whether it was entered, retry counts, and the wall-clock time a Wait or a retry delay
ends), and every change of the cursor is written together with the history events that
explain it, in one store transaction (`store.transition`). A restarted server calls
`Run.resume(cursor)`: a Wait or retry delay sleeps only for what is left of it, and the state
the crash interrupted is run again; states the history shows as exited never run again.

Parallel branches and Map iterations run on threads of their own; their events go into the
same history. A top-level Parallel/Map checkpoints each finished branch or iteration in the
cursor ("done"), so a resumed one runs only the unfinished ones, each from its start
(docs/workflows.md, decision 061).
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from runner.errors import WorkflowFailure
from runner.workflows import choice, intrinsics, paths, tasks

UNCATCHABLE = ("States.Runtime", "States.DataLimitExceeded")
MAX_PAYLOAD = 256 * 1024  # bytes of a state's output, as Step Functions limits it
MAP_THREADS = 40  # MaxConcurrency 0 (no limit) still runs at most this many iterations at once


class Aborted(Exception):
    """StopExecution (or a sibling branch's failure) ended this run."""


class TimedOut(Exception):
    """The machine's TimeoutSeconds passed."""


def _enc(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def error_matches(names: list[str], error: str) -> bool:
    if error in names:
        return True
    if error in UNCATCHABLE:
        return False
    if "States.ALL" in names:
        return True
    return "States.TaskFailed" in names and error != "States.Timeout"


def retry_delay(retrier: dict, attempt: int) -> float:
    """min(IntervalSeconds x BackoffRate^attempt, MaxDelaySeconds), FULL jitter: uniform below."""
    delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** attempt
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, retrier["MaxDelaySeconds"])
    if retrier.get("JitterStrategy") == "FULL":
        delay = random.uniform(0, delay)
    return delay


class Run:
    """One execution. `emit(events, cursor)` is the journal (store.transition for this
    execution); `stop` is set by StopExecution; `deadline` is the machine's timeout."""

    def __init__(self, definition: dict, invoke, emit, context: dict,
                 stop: threading.Event | None = None, deadline: float | None = None) -> None:
        self.definition = definition
        self.invoke = invoke
        self.emit = emit
        self.context = context
        self.stop = stop or threading.Event()
        self.deadline = deadline
        self._emit_lock = threading.Lock()
        self.root = self  # a branch's Run journals through its execution's top-level Run
        self._cursor: dict | None = None

    @property
    def cursor(self) -> dict | None:
        """The execution's top-level cursor, shared by the Runs of its branches."""
        return self.root._cursor

    @cursor.setter
    def cursor(self, value: dict | None) -> None:
        self.root._cursor = value

    # ----------------------------------------------------------------- the top level

    def start(self, value: Any) -> Any:
        return self.resume({"state": self.definition["StartAt"], "input": value})

    def resume(self, cursor: dict) -> Any:
        """Run from `cursor` to the end; returns the output or raises WorkflowFailure,
        Aborted or TimedOut."""
        self.cursor = cursor
        states = self.definition["States"]
        while True:
            nxt, output = self._state(cursor["state"], states[cursor["state"]], cursor, top=True)
            if nxt is None:
                return output
            cursor = {"state": nxt, "input": output}
            self.cursor = cursor

    def _machine(self, machine: dict, value: Any, extra_context: dict | None = None) -> Any:
        """A nested machine (branch, Map iteration): same states, no checkpoints."""
        states = machine["States"]
        cursor = {"state": machine["StartAt"], "input": value, "ctx": extra_context}
        while True:
            nxt, output = self._state(cursor["state"], states[cursor["state"]], cursor, top=False)
            if nxt is None:
                return output
            cursor = {"state": nxt, "input": output, "ctx": extra_context}

    def _journal(self, events: list, cursor: dict | None, top: bool) -> None:
        with self._emit_lock:
            if top:
                self.cursor = cursor
            if not self.emit(events, self.cursor):
                raise Aborted()

    def _check(self) -> None:
        if self.stop.is_set():
            raise Aborted()
        if self.deadline is not None and time.time() >= self.deadline:
            raise TimedOut()

    def _sleep_until(self, t: float) -> None:
        while True:
            self._check()
            left = t - time.time()
            if self.deadline is not None:
                left = min(left, self.deadline - time.time())
            if left <= 0:
                self._check()
                return
            self.stop.wait(min(left, 1.0))

    def _ctx(self, name: str, cursor: dict) -> dict:
        ctx = dict(self.context)
        ctx["State"] = {"Name": name, "EnteredTime": cursor.get("entered_at") or iso(time.time()),
                        "RetryCount": sum(cursor.get("attempts", {}).values())}
        if cursor.get("ctx"):
            ctx.update(cursor["ctx"])
        return ctx

    # ----------------------------------------------------------------- one state

    def _state(self, name: str, s: dict, cursor: dict, top: bool) -> tuple[str | None, Any]:
        self._check()
        kind = s["Type"]
        raw = cursor["input"]
        if not cursor.get("entered"):
            cursor = {**cursor, "entered": True, "entered_at": iso(time.time())}
            self._journal([(f"{kind}StateEntered", {"name": name, "input": _enc(raw)})], cursor, top)
        if kind != "Wait" and cursor.get("wake_at"):
            # Resumed during a retry delay: wait for what is left of it, then retry.
            self._sleep_until(cursor["wake_at"])
            cursor = {**cursor, "wake_at": None}
        while True:
            try:
                output = getattr(self, f"_{kind.lower()}")(name, s, raw, cursor, top)
                break
            except WorkflowFailure as f:
                cursor, handled = self._on_error(name, s, cursor, f, top)
                if handled is None:
                    continue  # retry: run the state again
                output = handled
                self._journal([(f"{kind}StateExited", {"name": name, "output": _enc(output[1])})],
                              {"state": output[0], "input": output[1]}, top)
                return output
        if kind in ("Succeed", "Fail"):
            return None, output
        nxt = output[0] if kind == "Choice" else (None if s.get("End") else s["Next"])
        value = output[1] if kind == "Choice" else output
        text = _enc(value)
        if len(text) > MAX_PAYLOAD:
            raise _Final(WorkflowFailure(
                "States.DataLimitExceeded", f"The state/task {name!r} returned a result with a "
                f"size exceeding the maximum number of bytes service limit ({MAX_PAYLOAD})"))
        self._journal([(f"{kind}StateExited", {"name": name, "output": text})],
                      {"state": nxt, "input": value} if nxt else self.cursor, top)
        return nxt, value

    def _on_error(self, name, s, cursor, f: WorkflowFailure, top):
        """(cursor, None) to retry after the delay, (cursor, (next, output)) when caught;
        re-raises `f` otherwise."""
        attempts = dict(cursor.get("attempts", {}))
        for i, r in enumerate(s.get("Retry", [])):
            if error_matches(r["ErrorEquals"], f.error):
                n = attempts.get(str(i), 0)
                if n < r.get("MaxAttempts", 3):
                    attempts[str(i)] = n + 1
                    wake = cursor.get("wake_at") or time.time() + retry_delay(r, n)
                    cursor = {**cursor, "attempts": attempts, "wake_at": wake}
                    self._journal([], cursor, top)
                    self._sleep_until(wake)
                    cursor = {**cursor, "wake_at": None}
                    return cursor, None
                break  # the first matching retrier decides, even when exhausted
        for c in s.get("Catch", []):
            if error_matches(c["ErrorEquals"], f.error):
                out = paths.set_result(cursor["input"], c.get("ResultPath", "$"),
                                       {"Error": f.error, "Cause": f.cause})
                return cursor, (c["Next"], out)
        raise f

    def _effective(self, s: dict, raw: Any, ctx: dict) -> Any:
        value = paths.input_path(s.get("InputPath", "$"), raw, ctx)
        if "Parameters" in s:
            value = paths.apply_template(s["Parameters"], value, ctx, intrinsics.evaluate)
        return value

    def _finish(self, s: dict, raw: Any, result: Any, ctx: dict) -> Any:
        if "ResultSelector" in s:
            result = paths.apply_template(s["ResultSelector"], result, ctx, intrinsics.evaluate)
        out = paths.set_result(raw, s.get("ResultPath", "$"), result)
        return paths.input_path(s.get("OutputPath", "$"), out, ctx)

    def _pass(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        result = s["Result"] if "Result" in s else self._effective(s, raw, ctx)
        return self._finish(s, raw, result, ctx)

    def _succeed(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        out = paths.input_path(s.get("OutputPath", "$"), paths.input_path(
            s.get("InputPath", "$"), raw, ctx), ctx)
        self._journal([("SucceedStateExited", {"name": name, "output": _enc(out)})], self.cursor, top)
        return out

    def _fail(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        error = paths.select(s["ErrorPath"], raw, ctx) if "ErrorPath" in s else s.get("Error")
        cause = paths.select(s["CausePath"], raw, ctx) if "CausePath" in s else s.get("Cause")
        raise _Final(WorkflowFailure(str(error) if error is not None else "",
                                     str(cause) if cause is not None else ""))

    def _choice(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        value = paths.input_path(s.get("InputPath", "$"), raw, ctx)
        for rule in s["Choices"]:
            if choice.matches(rule, value, ctx):
                return rule["Next"], paths.input_path(s.get("OutputPath", "$"), value, ctx)
        if "Default" in s:
            return s["Default"], paths.input_path(s.get("OutputPath", "$"), value, ctx)
        raise _Final(WorkflowFailure("States.NoChoiceMatched",
                                     f"No Matches! in state {name!r} and no Default"))

    def _wait(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        value = paths.input_path(s.get("InputPath", "$"), raw, ctx)
        wake = cursor.get("wake_at")
        if wake is None:
            if "Seconds" in s or "SecondsPath" in s:
                secs = s["Seconds"] if "Seconds" in s else paths.select(s["SecondsPath"], value, ctx)
                if not isinstance(secs, (int, float)) or isinstance(secs, bool) or secs < 0:
                    raise WorkflowFailure("States.Runtime", f"SecondsPath of {name!r} gave "
                                          f"{secs!r}, not a non-negative number")
                wake = time.time() + secs
            else:
                ts = s["Timestamp"] if "Timestamp" in s else paths.select(s["TimestampPath"], value, ctx)
                when = choice.parse_timestamp(ts)
                if when is None:
                    raise WorkflowFailure("States.Runtime", f"TimestampPath of {name!r} gave "
                                          f"{ts!r}, not an RFC 3339 timestamp")
                wake = when.timestamp()
            # Durable: a restart waits only for what is left.
            self._journal([], {**cursor, "wake_at": wake}, top)
        self._sleep_until(wake)
        return paths.input_path(s.get("OutputPath", "$"), value, ctx)

    def _task(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        value = self._effective(s, raw, ctx)
        timeout = s.get("TimeoutSeconds")
        if "TimeoutSecondsPath" in s:
            timeout = paths.select(s["TimeoutSecondsPath"], raw, ctx)
        res = s["Resource"]
        if res == tasks.INVOKE_ARN:
            fname, qualifier = tasks.function_of(str(value.get("FunctionName", "")))
            payload = value.get("Payload", raw)
            detail = {"resourceType": "lambda", "resource": "invoke", "region": "us-east-1",
                      "parameters": _enc(value)}
            self._journal([("TaskScheduled", detail),
                           ("TaskStarted", {"resourceType": "lambda", "resource": "invoke"})],
                          cursor, top)
            try:
                result, out = tasks.call(self.invoke, fname, qualifier, payload, timeout)
            except WorkflowFailure as f:
                kind = "TaskTimedOut" if f.error == "States.Timeout" else "TaskFailed"
                self._journal([(kind, {"resourceType": "lambda", "resource": "invoke",
                                       "error": f.error, "cause": f.cause})], cursor, top)
                raise
            result = tasks.invoke_response(result, out)
            self._journal([("TaskSucceeded", {"resourceType": "lambda", "resource": "invoke",
                                              "output": _enc(result)})], cursor, top)
        else:
            fname, qualifier = tasks.function_of(res)
            sched = {"resource": res, "input": _enc(value)}
            if timeout:
                sched["timeoutInSeconds"] = int(timeout)
            self._journal([("LambdaFunctionScheduled", sched), ("LambdaFunctionStarted", {})],
                          cursor, top)
            try:
                _, result = tasks.call(self.invoke, fname, qualifier, value, timeout)
            except WorkflowFailure as f:
                if f.error == "States.Timeout":
                    ev = ("LambdaFunctionTimedOut", {"error": f.error, "cause": f.cause})
                else:
                    ev = ("LambdaFunctionFailed", {"error": f.error, "cause": f.cause})
                self._journal([ev], cursor, top)
                raise
            self._journal([("LambdaFunctionSucceeded", {"output": _enc(result)})], cursor, top)
        return self._finish(s, raw, result, ctx)

    # ----------------------------------------------------------------- Parallel and Map

    def _children(self, jobs: list, limit: int, cursor: dict, top: bool) -> list:
        """Run `jobs` (callables) on up to `limit` threads; the first failure stops the rest
        (they see Aborted at their next state) and is raised. At the top level each finished
        job's result is checkpointed in the cursor ("done"), so that a resumed Parallel or
        Map state runs only the branches and iterations that had not finished."""
        done = dict(cursor.get("done") or {}) if top else {}
        child = Run(self.definition, self.invoke, self.emit, self.context,
                    _ChainedStop(self.stop), self.deadline)
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
            result = job(child)
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
                    except (WorkflowFailure, _Final, Aborted, TimedOut) as exc:
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
            _raise(results[-1])
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
            def run(child: Run):
                mctx = {"Map": {"Item": {"Index": i, "Value": item}}}
                v = item
                if selector is not None:
                    v = paths.apply_template(selector, value, {**ctx, **mctx}, intrinsics.evaluate)
                child._journal([("MapIterationStarted", {"name": name, "index": i})], None, False)
                try:
                    out = child._machine(proc, v, mctx)
                except (WorkflowFailure, _Final) as exc:
                    child._journal([("MapIterationFailed", {"name": name, "index": i})], None, False)
                    if tolerant:
                        f = _failure(exc)
                        return _Tolerated({"Error": f.error, "Cause": f.cause})
                    raise
                child._journal([("MapIterationSucceeded", {"name": name, "index": i})], None, False)
                return out
            return run

        jobs = [job(i, item) for i, item in enumerate(items)]
        results = self._children(jobs, limit or MAP_THREADS, cursor, top) if jobs else []
        if len(results) > len(jobs):
            self._journal([("MapStateFailed", {})], self.cursor, top)
            _raise(results[-1])
        failed = sum(isinstance(r, _Tolerated) for r in results)
        if failed and (tolerated_n is None or failed > tolerated_n) and (
                tolerated_pct is None or failed * 100 > tolerated_pct * len(items)):
            self._journal([("MapStateFailed", {})], self.cursor, top)
            raise WorkflowFailure("States.ExceedToleratedFailureThreshold",
                                  f"{failed} of {len(items)} items failed in Map state {name!r}")
        results = [r.value if isinstance(r, _Tolerated) else r for r in results]
        self._journal([("MapStateSucceeded", {})], self.cursor, top)
        return self._finish(s, raw, results, ctx)


class _Final(Exception):
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


def _failure(exc: BaseException) -> WorkflowFailure:
    return exc.failure if isinstance(exc, _Final) else exc  # type: ignore[return-value]


def _raise(exc: BaseException):
    if isinstance(exc, _Final):
        raise exc.failure  # a nested Fail fails the Parallel/Map, which may catch it
    raise exc


def run_to_end(run: Run, cursor: dict | None, value: Any) -> Any:
    """Run.start / Run.resume with a Fail state's failure surfaced as WorkflowFailure."""
    try:
        return run.resume(cursor) if cursor else run.start(value)
    except _Final as f:
        raise f.failure from None
