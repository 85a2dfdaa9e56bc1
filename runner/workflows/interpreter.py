"""The interpreter: runs a validated definition's states and records what happens.

One `Run` per execution. The top-level machine advances a *cursor* (state name, its raw
input, whether it was entered, retry counts, and the wall-clock time a Wait or a retry delay
ends, on the store's clock: the database's in a cluster, decision 079), and every change of
the cursor is written together with the history events that explain it, in one store
transaction (`store.transition`). A restarted server calls
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
from datetime import datetime, timezone
from typing import Any, Callable

from runner.errors import WorkflowFailure
from runner.workflows import choice, intrinsics, paths, tasks
from runner.workflows.branches import Aborted, BranchingStates, Final, TimedOut

UNCATCHABLE = ("States.Runtime", "States.DataLimitExceeded")
_carry = threading.local()  # .events: this thread's deferred history events (Run._defer)
MAX_PAYLOAD = 256 * 1024  # bytes of a state's output, as Step Functions limits it


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


class Run(BranchingStates):
    """One execution. `emit(events, cursor)` is the journal (store.transition for this
    execution); `stop` is set by StopExecution; `deadline` is the machine's timeout."""

    def __init__(self, definition: dict, invoke, emit, context: dict,
                 stop: threading.Event | None = None, deadline: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.definition = definition
        # The store's clock (WorkflowStore.clock): every due time written to the cursor and the
        # deadline are on it, so a node that adopts the execution reads them on the same clock.
        self.clock = clock
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
            nxt, output = self._state(cursor["state"], states, cursor, top=True)
            if nxt is None:
                return output
            cursor = nxt

    def _machine(self, machine: dict, value: Any, extra_context: dict | None = None) -> Any:
        """A nested machine (branch, Map iteration): same states, no checkpoints."""
        states = machine["States"]
        cursor = {"state": machine["StartAt"], "input": value, "ctx": extra_context}
        while True:
            nxt, output = self._state(cursor["state"], states, cursor, top=False)
            if nxt is None:
                return output
            cursor = nxt

    def _defer(self, events: list) -> None:
        """Events that change no cursor (a task's result): they go out with this thread's
        next transition, usually the state's exit, saving a transaction (decision 059)."""
        pending = getattr(_carry, "events", None)
        if pending is None:
            _carry.events = pending = []
        pending.extend(events)

    def flush(self) -> None:
        """Write this thread's deferred events now (a run or branch ends without another
        transition, e.g. by failing); forget them if the execution no longer runs."""
        pending = getattr(_carry, "events", None)
        _carry.events = []
        if pending:
            try:
                with self._emit_lock:
                    self.emit(pending, self.cursor)
            except Exception:  # closing or stopped: the cursor, not these events, resumes it
                pass

    def _journal(self, events: list, cursor: dict | None, top: bool) -> None:
        pending = getattr(_carry, "events", None)
        if pending:
            events = pending + list(events)
            _carry.events = []
        with self._emit_lock:
            if top:
                self.cursor = cursor
            if not self.emit(events, self.cursor):
                raise Aborted()

    def _check(self) -> None:
        if self.stop.is_set():
            raise Aborted()
        if self.deadline is not None and self.clock() >= self.deadline:
            raise TimedOut()

    def _sleep_until(self, t: float) -> None:
        while True:
            self._check()
            left = t - self.clock()
            if self.deadline is not None:
                left = min(left, self.deadline - self.clock())
            if left <= 0:
                self._check()
                return
            self.stop.wait(min(left, 1.0))

    def _ctx(self, name: str, cursor: dict) -> dict:
        ctx = dict(self.context)
        ctx["State"] = {"Name": name, "EnteredTime": cursor.get("entered_at") or iso(self.clock()),
                        "RetryCount": sum(cursor.get("attempts", {}).values())}
        if cursor.get("ctx"):
            ctx.update(cursor["ctx"])
        return ctx

    # ----------------------------------------------------------------- one state

    def _state(self, name: str, states: dict, cursor: dict, top: bool) -> tuple[dict | None, Any]:
        """Run state `name` from `cursor`; (the next state's cursor, already entered, or None
        at the end, the output)."""
        self._check()
        s = states[name]
        kind = s["Type"]
        raw = cursor["input"]
        if not cursor.get("entered"):
            cursor = {**cursor, "entered": True, "entered_at": iso(self.clock())}
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
                return self._advance(name, kind, handled[0], handled[1], states, cursor, top)
        if kind in ("Succeed", "Fail"):
            return None, output
        nxt = output[0] if kind == "Choice" else (None if s.get("End") else s["Next"])
        value = output[1] if kind == "Choice" else output
        return self._advance(name, kind, nxt, value, states, cursor, top)

    def _advance(self, name, kind, nxt, value, states, cursor, top) -> tuple[dict | None, Any]:
        """Leave `name` for `nxt` (None: the end) with `value`: the exit and the next state's
        entry are one transition, one transaction (decision 059)."""
        text = _enc(value)
        if len(text) > MAX_PAYLOAD:
            raise Final(WorkflowFailure(
                "States.DataLimitExceeded", f"The state/task {name!r} returned a result with a "
                f"size exceeding the maximum number of bytes service limit ({MAX_PAYLOAD})"))
        events = [(f"{kind}StateExited", {"name": name, "output": text})]
        if nxt is None:
            self._journal(events, self.cursor, top)
            return None, value
        self._check()
        events.append((f"{states[nxt]['Type']}StateEntered", {"name": nxt, "input": text}))
        following = {"state": nxt, "input": value, "entered": True,
                     "entered_at": iso(self.clock())}
        if cursor.get("ctx"):
            following["ctx"] = cursor["ctx"]
        self._journal(events, following, top)
        return following, value

    def _on_error(self, name, s, cursor, f: WorkflowFailure, top):
        """(cursor, None) to retry after the delay, (cursor, (next, output)) when caught;
        re-raises `f` otherwise."""
        attempts = dict(cursor.get("attempts", {}))
        for i, r in enumerate(s.get("Retry", [])):
            if error_matches(r["ErrorEquals"], f.error):
                n = attempts.get(str(i), 0)
                if n < r.get("MaxAttempts", 3):
                    attempts[str(i)] = n + 1
                    wake = cursor.get("wake_at") or self.clock() + retry_delay(r, n)
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
        error = _path_or_call(s["ErrorPath"], raw, ctx) if "ErrorPath" in s else s.get("Error")
        cause = _path_or_call(s["CausePath"], raw, ctx) if "CausePath" in s else s.get("Cause")
        raise Final(WorkflowFailure(str(error) if error is not None else "",
                                     str(cause) if cause is not None else ""))

    def _choice(self, name, s, raw, cursor, top):
        ctx = self._ctx(name, cursor)
        value = paths.input_path(s.get("InputPath", "$"), raw, ctx)
        for rule in s["Choices"]:
            if choice.matches(rule, value, ctx):
                return rule["Next"], paths.input_path(s.get("OutputPath", "$"), value, ctx)
        if "Default" in s:
            return s["Default"], paths.input_path(s.get("OutputPath", "$"), value, ctx)
        raise Final(WorkflowFailure("States.NoChoiceMatched",
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
                wake = self.clock() + secs
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
                self._defer([(kind, {"resourceType": "lambda", "resource": "invoke",
                                     "error": f.error, "cause": f.cause})])
                raise
            result = tasks.invoke_response(result, out)
            self._defer([("TaskSucceeded", {"resourceType": "lambda", "resource": "invoke",
                                            "output": _enc(result)})])
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
                self._defer([ev])
                raise
            self._defer([("LambdaFunctionSucceeded", {"output": _enc(result)})])
        return self._finish(s, raw, result, ctx)


def _path_or_call(text: str, data: Any, ctx: dict) -> Any:
    """A Fail state's ErrorPath/CausePath: a reference path or an intrinsic function."""
    if text.startswith("States."):
        return intrinsics.evaluate(text, data, ctx)
    return paths.select(text, data, ctx)


def run_to_end(run: Run, cursor: dict | None, value: Any) -> Any:
    """Run.start / Run.resume with a Fail state's failure surfaced as WorkflowFailure."""
    try:
        return run.resume(cursor) if cursor else run.start(value)
    except Final as f:
        raise f.failure from None
    finally:
        run.flush()  # a failure's deferred events precede ExecutionFailed
