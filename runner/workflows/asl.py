"""Parsing and validating Amazon States Language definitions (JSONPath mode).

`validate(text)` returns the definition as a dict or raises InvalidDefinition whose message
names the state and the field, e.g. ``States.Charge.Next: 'Ship' is not a state of this
machine; add it or point Next at one of Charge, Done``. Checked at creation: the JSON, the
fields each state type allows (unknown fields are refused, so a typo never silently does
nothing), Next/Default/Catch targets, unreachable states, that every path can end, paths and
reference paths, intrinsic calls, Choice rules, Retry/Catch, and nested Parallel branches and
Map processors. JSONata mode is refused (decision 060).

Here: the machine's shape (the fields each state type allows, the checks per type,
transitions, reachability, unique names); what a field's value may hold (a path, a template, a
Choice rule, a retrier...) is checked by asl_values.py.
"""

from __future__ import annotations

import json
from typing import Any

from runner.workflows import choice
from runner.workflows.asl_values import (
    check_catch,
    check_intrinsic,
    check_non_negative_int,
    check_path,
    check_positive_int,
    check_reference_path,
    check_retry,
    check_rule,
    check_target,
    check_template,
    fail,
)

COMMON = {"Type", "Comment", "QueryLanguage"}
IO = {"InputPath", "OutputPath"}
FLOW = {"Next", "End"}
RESULT = {"ResultPath"}
ERRORS = {"Retry", "Catch"}
FIELDS = {
    "Task": COMMON | IO | FLOW | RESULT | ERRORS | {
        "Resource", "Parameters", "ResultSelector", "TimeoutSeconds", "TimeoutSecondsPath",
        "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials"},
    "Pass": COMMON | IO | FLOW | RESULT | {"Parameters", "Result"},
    "Choice": COMMON | IO | {"Choices", "Default"},
    "Wait": COMMON | IO | FLOW | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": COMMON | IO,
    "Fail": COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": COMMON | IO | FLOW | RESULT | ERRORS | {"Branches", "Parameters",
                                                         "ResultSelector"},
    "Map": COMMON | IO | FLOW | RESULT | ERRORS | {
        "ItemsPath", "ItemSelector", "Parameters", "ItemProcessor", "Iterator",
        "MaxConcurrency", "MaxConcurrencyPath", "ResultSelector", "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath", "ToleratedFailureCount", "ToleratedFailureCountPath",
        "Label", "ItemReader", "ItemBatcher", "ResultWriter"},
}
TOP = {"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"}
DISTRIBUTED = ("ItemReader", "ItemBatcher", "ResultWriter")
MAX_NAME = 80


def parse(definition: str | dict) -> dict:
    if isinstance(definition, dict):
        return definition
    try:
        doc = json.loads(definition)
    except (TypeError, ValueError) as exc:
        fail("definition", f"is not valid JSON ({exc}); give the state machine as a JSON object")
    if not isinstance(doc, dict):
        fail("definition", "must be a JSON object with StartAt and States")
    return doc


def validate(definition: str | dict) -> dict:
    doc = parse(definition)
    if doc.get("QueryLanguage", "JSONPath") != "JSONPath":
        fail("QueryLanguage", f"{doc['QueryLanguage']!r} is not supported: this engine runs "
             "JSONPath definitions only (JSONata is not supported yet; see "
             "docs/workflows.md); remove QueryLanguage or set it to \"JSONPath\"")
    _machine(doc, "", top=True)
    _unique_names(doc)
    return doc


def _unique_names(doc: dict) -> None:
    """State names are unique across the whole machine, branches and Map processors too
    (the ASL specification): the history and $$.State.Name name a state unambiguously."""
    seen: set[str] = set()

    def walk(machine: dict, where: str) -> None:
        for name, s in machine["States"].items():
            if name in seen:
                fail(f"{where}States.{name}", "a state of this name already exists elsewhere in "
                     "the machine; state names must be unique across branches and Map "
                     "processors too")
            seen.add(name)
            for i, b in enumerate(s.get("Branches", [])):
                walk(b, f"{where}States.{name}.Branches[{i}].")
            proc = s.get("ItemProcessor", s.get("Iterator"))
            if proc is not None:
                walk(proc, f"{where}States.{name}.ItemProcessor.")

    walk(doc, "")


def _machine(doc: Any, where: str, top: bool = False) -> None:
    if not isinstance(doc, dict):
        fail(where or "definition", "must be an object with StartAt and States")
    allowed = TOP if top else {"StartAt", "States", "Comment", "ProcessorConfig"}
    for key in doc:
        if key not in allowed:
            fail(f"{where}{key}", f"is not a field of a state machine; allowed: {', '.join(sorted(allowed))}")
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        fail(f"{where}States", "must be an object with at least one state")
    start = doc.get("StartAt")
    if not isinstance(start, str) or start not in states:
        fail(f"{where}StartAt", f"{start!r} is not a state of this machine; use one of "
             f"{', '.join(states)}")
    if "TimeoutSeconds" in doc:
        check_positive_int(doc["TimeoutSeconds"], f"{where}TimeoutSeconds")
    cfg = doc.get("ProcessorConfig")
    if cfg is not None and (not isinstance(cfg, dict) or cfg.get("Mode", "INLINE") != "INLINE"):
        fail(f"{where}ProcessorConfig", "only Mode INLINE is supported (distributed Map needs S3)")
    for name, state in states.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            fail(f"{where}States", f"state name {name!r} must be 1..{MAX_NAME} characters")
        _state(name, state, states, f"{where}States.{name}.")
    _reachable(doc, where)


def _state(name: str, s: Any, states: dict, where: str) -> None:
    if not isinstance(s, dict):
        fail(where[:-1], "must be an object with a Type")
    kind = s.get("Type")
    if kind not in FIELDS:
        fail(f"{where}Type", f"{kind!r} is not a state type; use one of {', '.join(FIELDS)}")
    for key in s:
        if key not in FIELDS[kind]:
            fail(f"{where}{key}", f"is not a field of a {kind} state; allowed: "
                 f"{', '.join(sorted(FIELDS[kind]))}")
    if s.get("QueryLanguage", "JSONPath") != "JSONPath":
        fail(f"{where}QueryLanguage", "only JSONPath is supported (docs/workflows.md)")
    if kind in ("Choice", "Succeed", "Fail"):
        pass
    elif ("Next" in s) == bool(s.get("End")):
        fail(where[:-1], f"a {kind} state needs exactly one of Next or \"End\": true")
    if "End" in s and s["End"] is not True:
        fail(f"{where}End", "must be true when present")
    if "Next" in s:
        check_target(s["Next"], states, f"{where}Next")
    for f in ("InputPath", "OutputPath", "ItemsPath", "SecondsPath", "TimestampPath",
              "ErrorPath", "CausePath", "MaxConcurrencyPath", "TimeoutSecondsPath",
              "HeartbeatSecondsPath", "ToleratedFailurePercentagePath",
              "ToleratedFailureCountPath"):
        if f in s and not (s[f] is None and f in ("InputPath", "OutputPath")):
            if f in ("ErrorPath", "CausePath") and str(s[f]).startswith("States."):
                check_intrinsic(s[f], f"{where}{f}")  # AWS allows an intrinsic function here
            else:
                check_path(s[f], f"{where}{f}")
    if "ResultPath" in s and s["ResultPath"] is not None:
        check_reference_path(s["ResultPath"], f"{where}ResultPath")
    for f in ("Parameters", "ResultSelector", "ItemSelector"):
        if f in s:
            check_template(s[f], f"{where}{f}")
    for f in ("ErrorPath", "CausePath"):
        if f in s and f[:-4] in s:
            fail(f"{where}{f}", f"give {f[:-4]} or {f}, not both")
    getattr(_Checks, kind)(s, states, where)
    if "Retry" in s:
        check_retry(s["Retry"], f"{where}Retry")
    if "Catch" in s:
        check_catch(s["Catch"], states, f"{where}Catch")


class _Checks:
    @staticmethod
    def Task(s, states, where):
        res = s.get("Resource")
        if not isinstance(res, str) or not res:
            fail(f"{where}Resource", "is required: a function name, a Lambda function ARN or "
                 "arn:aws:states:::lambda:invoke")
        if res.startswith("arn:") and not (res.startswith("arn:aws:states:::lambda:invoke")
                                           or ":lambda:" in res and ":function:" in res):
            fail(f"{where}Resource", f"{res!r} is not supported; use a function name, "
                 "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or "
                 "arn:aws:states:::lambda:invoke")
        if res.startswith("arn:aws:states:::lambda:invoke"):
            if res != "arn:aws:states:::lambda:invoke":
                fail(f"{where}Resource", "only the request-response lambda:invoke integration is "
                     "supported (no .sync or .waitForTaskToken)")
            params = s.get("Parameters")
            if not isinstance(params, dict) or not ("FunctionName" in params or
                                                    "FunctionName.$" in params):
                fail(f"{where}Parameters", "arn:aws:states:::lambda:invoke needs "
                     "Parameters.FunctionName")
        for f in ("TimeoutSeconds", "HeartbeatSeconds"):
            if f in s:
                check_positive_int(s[f], f"{where}{f}")
            if f in s and f"{f}Path" in s:
                fail(f"{where}{f}Path", f"give {f} or {f}Path, not both")

    @staticmethod
    def Pass(s, states, where):
        pass

    @staticmethod
    def Succeed(s, states, where):
        pass

    @staticmethod
    def Fail(s, states, where):
        for f in ("Error", "Cause"):
            if f in s and not isinstance(s[f], str):
                fail(f"{where}{f}", "must be a string")

    @staticmethod
    def Wait(s, states, where):
        given = [f for f in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if f in s]
        if len(given) != 1:
            fail(where[:-1], "a Wait state needs exactly one of Seconds, SecondsPath, "
                 "Timestamp or TimestampPath")
        if "Seconds" in s:
            check_non_negative_int(s["Seconds"], f"{where}Seconds")
        if "Timestamp" in s and choice.parse_timestamp(s["Timestamp"]) is None:
            fail(f"{where}Timestamp", "must be an RFC 3339 timestamp like 2026-01-01T00:00:00Z")

    @staticmethod
    def Choice(s, states, where):
        rules = s.get("Choices")
        if not isinstance(rules, list) or not rules:
            fail(f"{where}Choices", "must be a non-empty array of rules")
        for i, rule in enumerate(rules):
            check_rule(rule, f"{where}Choices[{i}]", top=True)
            check_target(rule.get("Next"), states, f"{where}Choices[{i}].Next")
        if "Default" in s:
            check_target(s["Default"], states, f"{where}Default")

    @staticmethod
    def Parallel(s, states, where):
        branches = s.get("Branches")
        if not isinstance(branches, list) or not branches:
            fail(f"{where}Branches", "must be a non-empty array of state machines")
        for i, b in enumerate(branches):
            _machine(b, f"{where}Branches[{i}].")

    @staticmethod
    def Map(s, states, where):
        for f in DISTRIBUTED:
            if f in s:
                fail(f"{where}{f}", "distributed Map (S3 readers and writers) is not supported; "
                     "use an inline Map over ItemsPath")
        if "ItemProcessor" in s and "Iterator" in s:
            fail(f"{where}Iterator", "give ItemProcessor or the older Iterator, not both")
        if "ItemSelector" in s and "Parameters" in s:
            fail(f"{where}Parameters", "give ItemSelector or the older Parameters, not both")
        proc = s.get("ItemProcessor", s.get("Iterator"))
        if proc is None:
            fail(f"{where}ItemProcessor", "is required: the state machine run for each item")
        _machine(proc, f"{where}ItemProcessor.")
        if "MaxConcurrency" in s:
            check_non_negative_int(s["MaxConcurrency"], f"{where}MaxConcurrency", " (0 = no limit)")
        if "ToleratedFailurePercentage" in s:
            v = s["ToleratedFailurePercentage"]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
                fail(f"{where}ToleratedFailurePercentage", "must be a number in 0..100")
        if "ToleratedFailureCount" in s:
            check_non_negative_int(s["ToleratedFailureCount"], f"{where}ToleratedFailureCount")


def _reachable(doc: dict, where: str) -> None:
    states = doc["States"]
    seen, todo = set(), [doc["StartAt"]]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(successors(states[n]))
    unreachable = [n for n in states if n not in seen]
    if unreachable:
        fail(f"{where}States.{unreachable[0]}", "is unreachable from StartAt; remove it or "
             "point a Next, Default or Catch at it")
    # Every state must be able to reach an end (a terminal state).
    can_end = {n for n, s in states.items() if s.get("End") or s["Type"] in ("Succeed", "Fail")}
    changed = True
    while changed:
        changed = False
        for n, s in states.items():
            if n not in can_end and any(x in can_end for x in successors(s)):
                can_end.add(n)
                changed = True
    stuck = [n for n in states if n not in can_end]
    if stuck:
        fail(f"{where}States.{stuck[0]}", "can never reach a terminal state (End, Succeed or "
             "Fail): the machine would loop forever")


def successors(s: dict) -> list[str]:
    out = []
    if "Next" in s:
        out.append(s["Next"])
    if s["Type"] == "Choice":
        out += [r["Next"] for r in s["Choices"]]
        if "Default" in s:
            out.append(s["Default"])
    out += [c["Next"] for c in s.get("Catch", [])]
    return out
