"""The dashboard's workflow views: state machines, their executions, and one execution as a
graph of its states coloured by outcome (service/http/dashboard.py serves them as JSON).

    machines(engine)                     every machine with its executions counted by status
    machine(engine, name)                a machine's states (the graph) and newest executions
    execution(engine, machine, name)     one execution: its states with an outcome each

The outcome of a state is read from the execution's history (the events the interpreter
journals), not from the cursor, which only knows where a run is now:

    succeeded     entered and exited (the last entry, for a state entered more than once)
    caught        exited through a Catch after its task failed
    failed        entered, not exited, in a FAILED or TIMED_OUT execution (the state the
                  run ended in: a Fail state, a task whose error nothing caught, a timeout)
    aborted       entered, not exited, in an ABORTED execution (StopExecution)
    running       entered, not exited, in a RUNNING execution
    not_reached   never entered

Failure events of a task (LambdaFunctionFailed, TaskFailed, ...) carry no state name: they
belong to the Task, Map or Parallel state entered last and still open. Inside a Parallel's
branches, running at once, that guess can name a sibling branch's task; the top-level states,
which the graph draws, run one at a time and are always right.
"""

from __future__ import annotations

import json

from runner.errors import ExecutionDoesNotExist, ResourceNotFound
from runner.storage.workflows import ABORTED, FAILED, RUNNING, STATUSES, TIMED_OUT
from runner.workflows import asl
from runner.workflows.engine import PREFIX

MAX_EXECUTIONS = 100  # shown per machine, newest first; the counts cover all of them

# Which state type a nameless failure event belongs to.
_FAILURES = {"LambdaFunctionFailed": "Task", "LambdaFunctionTimedOut": "Task",
             "TaskFailed": "Task", "TaskTimedOut": "Task",
             "ParallelStateFailed": "Parallel", "MapStateFailed": "Map"}
# A task that starts again after a failure is a retry: the failure no longer decides.
_RETRIES = ("LambdaFunctionScheduled", "TaskScheduled", "ParallelStateStarted", "MapStateStarted")
_OPEN_OUTCOME = {RUNNING: "running", FAILED: "failed", TIMED_OUT: "failed", ABORTED: "aborted"}


def machines(engine) -> dict:
    if engine is None:
        return {"configured": False, "machines": []}
    out = []
    for m in engine.list_machines():
        runs = engine.list_executions(m.arn)
        counts = {s: 0 for s in STATUSES}
        for ex in runs:
            counts[ex.status] = counts.get(ex.status, 0) + 1
        out.append({"name": m.name, "arn": m.arn, "type": m.type, "created": m.created,
                    "updated": m.updated, "executions": len(runs), "counts": counts,
                    "last_start": runs[0].start if runs else None})
    return {"configured": True, "machines": out}


def machine(engine, name: str) -> dict:
    _require(engine)
    m = engine.resolve(name)
    runs = engine.list_executions(m.arn)
    return {"configured": True, "name": m.name, "arn": m.arn, "type": m.type,
            "created": m.created, "updated": m.updated,
            "graph": graph(asl.parse(m.definition)),
            "definition": json.dumps(json.loads(m.definition), indent=2),
            "executions": [_execution_row(ex) for ex in runs[:MAX_EXECUTIONS]],
            "total_executions": len(runs)}


def execution(engine, machine_name: str, name: str) -> dict:
    """An execution of machine `machine_name` by its name. Express executions have a unique
    suffix in their ARN, so they are looked up among the machine's (kept in memory)."""
    _require(engine)
    m = engine.resolve(machine_name)
    if m.type == "EXPRESS":
        found = [ex for ex in engine.list_executions(m.arn) if ex.name == name]
        if not found:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: {name!r} of express "
                                        f"machine {m.name!r} (express runs are kept in memory "
                                        "only, until the server restarts)")
        ex = found[0]
    else:
        ex = engine.describe_execution(f"{PREFIX}execution:{m.name}:{name}")
    # The definition the execution started with: an update of the machine never changes a run.
    definition = asl.parse(ex.definition or m.definition)
    events = engine.history(ex.arn)
    states = outcomes(events, ex.status)
    g = graph(definition)
    for node in g["nodes"]:
        node.update(states.get(node["name"], {"outcome": "not_reached", "entered": 0}))
    return {"configured": True, "machine": m.name, **_execution_row(ex),
            "input": ex.input, "output": ex.output, "error": ex.error, "cause": ex.cause,
            "graph": g,
            "events": [{"id": e.id, "timestamp": e.timestamp, "type": e.type,
                        "state": e.details.get("name", "")} for e in events]}


def graph(definition: dict) -> dict:
    """The top-level states in the order the definition lists them, and the edges between
    them (Next, each Choice rule, Default, each Catch). Parallel branches and Map processors
    stay inside their state's box (their states are listed on it, not drawn)."""
    states = definition.get("States", {})
    nodes, edges = [], []
    for name, s in states.items():
        kind = s.get("Type", "")
        inner = []
        for b in s.get("Branches", []):
            inner.extend(b.get("States", {}))
        proc = s.get("ItemProcessor", s.get("Iterator"))
        if proc is not None:
            inner.extend(proc.get("States", {}))
        nodes.append({"name": name, "type": kind, "end": bool(s.get("End")) or
                      kind in ("Succeed", "Fail"), "inner": inner})
        if s.get("Next"):
            edges.append({"from": name, "to": s["Next"], "kind": "next", "label": ""})
        for i, rule in enumerate(s.get("Choices", [])):
            edges.append({"from": name, "to": rule["Next"], "kind": "choice",
                          "label": f"rule {i + 1}"})
        if s.get("Default"):
            edges.append({"from": name, "to": s["Default"], "kind": "default",
                          "label": "default"})
        for c in s.get("Catch", []):
            edges.append({"from": name, "to": c["Next"], "kind": "catch",
                          "label": "catch " + ",".join(c.get("ErrorEquals", []))})
    return {"start": definition.get("StartAt", ""), "nodes": nodes, "edges": edges}


def outcomes(events, status: str) -> dict[str, dict]:
    """name -> {"outcome", "entered" (times), "error", "cause"} for every state the history
    shows entered (see the module's docstring for the outcomes)."""
    seen: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    open_: list[str] = []  # entered and not exited, in order of entry
    for e in events:
        name = e.details.get("name") if isinstance(e.details, dict) else None
        if e.type.endswith("StateEntered") and name:
            s = seen.setdefault(name, {"entered": 0})
            s.update(entered=s["entered"] + 1, outcome="open", error=None, cause=None)
            kinds[name] = e.type.removesuffix("StateEntered")
            if name in open_:
                open_.remove(name)
            open_.append(name)
        elif e.type.endswith("StateExited") and name in seen:
            s = seen[name]
            s["outcome"] = "caught" if s.get("error") else "succeeded"
            if name in open_:
                open_.remove(name)
        elif e.type in _FAILURES or e.type in _RETRIES:
            owner = _latest_open(open_, kinds, _FAILURES.get(e.type) or _retry_kind(e.type))
            if owner is None:
                continue
            if e.type in _FAILURES:
                seen[owner].update(error=e.details.get("error"), cause=e.details.get("cause"))
            else:
                seen[owner].update(error=None, cause=None)
    for name in open_:  # a SUCCEEDED run has none: its last state exited
        seen[name]["outcome"] = _OPEN_OUTCOME.get(status, "failed")
    return seen


def _retry_kind(event_type: str) -> str:
    return {"ParallelStateStarted": "Parallel", "MapStateStarted": "Map"}.get(event_type, "Task")


def _latest_open(open_: list[str], kinds: dict[str, str], kind: str) -> str | None:
    for name in reversed(open_):
        if kinds.get(name) == kind:
            return name
    return None


def _execution_row(ex) -> dict:
    return {"name": ex.name, "arn": ex.arn, "status": ex.status, "start": ex.start,
            "stop": ex.stop}


def _require(engine) -> None:
    if engine is None:
        raise ResourceNotFound("no workflows configured on this server: the dashboard was "
                               "started without a workflow engine (runner serve has one)")

