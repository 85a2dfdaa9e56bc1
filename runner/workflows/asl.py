"""Parsing and validating Amazon States Language definitions (JSONPath mode).

`validate(text)` returns the definition as a dict or raises InvalidDefinition whose message
names the state and the field, e.g. ``States.Charge.Next: 'Ship' is not a state of this
machine; add it or point Next at one of Charge, Done``. Checked at creation: the JSON, the
fields each state type allows (unknown fields are refused, so a typo never silently does
nothing), Next/Default/Catch targets, unreachable states, that every path can end, paths and
reference paths, intrinsic calls, Choice rules, Retry/Catch, and nested Parallel branches and
Map processors. JSONata mode is refused (decision 060).
"""

from __future__ import annotations

import json
from typing import Any

from runner.errors import InvalidDefinition
from runner.workflows import choice, intrinsics, paths

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
RETRIER = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds",
           "JitterStrategy", "Comment"}
CATCHER = {"ErrorEquals", "Next", "ResultPath", "Comment"}
MAX_NAME = 80


def _fail(where: str, message: str):
    raise InvalidDefinition(where, message)


def parse(definition: str | dict) -> dict:
    if isinstance(definition, dict):
        return definition
    try:
        doc = json.loads(definition)
    except (TypeError, ValueError) as exc:
        _fail("definition", f"is not valid JSON ({exc}); give the state machine as a JSON object")
    if not isinstance(doc, dict):
        _fail("definition", "must be a JSON object with StartAt and States")
    return doc


def validate(definition: str | dict) -> dict:
    doc = parse(definition)
    if doc.get("QueryLanguage", "JSONPath") != "JSONPath":
        _fail("QueryLanguage", f"{doc['QueryLanguage']!r} is not supported: this engine runs "
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
                _fail(f"{where}States.{name}", "a state of this name already exists elsewhere in "
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
        _fail(where or "definition", "must be an object with StartAt and States")
    allowed = TOP if top else {"StartAt", "States", "Comment", "ProcessorConfig"}
    for key in doc:
        if key not in allowed:
            _fail(f"{where}{key}", f"is not a field of a state machine; allowed: {', '.join(sorted(allowed))}")
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        _fail(f"{where}States", "must be an object with at least one state")
    start = doc.get("StartAt")
    if not isinstance(start, str) or start not in states:
        _fail(f"{where}StartAt", f"{start!r} is not a state of this machine; use one of "
              f"{', '.join(states)}")
    if "TimeoutSeconds" in doc:
        _positive_int(doc["TimeoutSeconds"], f"{where}TimeoutSeconds")
    cfg = doc.get("ProcessorConfig")
    if cfg is not None and (not isinstance(cfg, dict) or cfg.get("Mode", "INLINE") != "INLINE"):
        _fail(f"{where}ProcessorConfig", "only Mode INLINE is supported (distributed Map needs S3)")
    for name, state in states.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            _fail(f"{where}States", f"state name {name!r} must be 1..{MAX_NAME} characters")
        _state(name, state, states, f"{where}States.{name}.")
    _reachable(doc, where)


def _state(name: str, s: Any, states: dict, where: str) -> None:
    if not isinstance(s, dict):
        _fail(where[:-1], "must be an object with a Type")
    kind = s.get("Type")
    if kind not in FIELDS:
        _fail(f"{where}Type", f"{kind!r} is not a state type; use one of {', '.join(FIELDS)}")
    for key in s:
        if key not in FIELDS[kind]:
            _fail(f"{where}{key}", f"is not a field of a {kind} state; allowed: "
                  f"{', '.join(sorted(FIELDS[kind]))}")
    if s.get("QueryLanguage", "JSONPath") != "JSONPath":
        _fail(f"{where}QueryLanguage", "only JSONPath is supported (docs/workflows.md)")
    if kind in ("Choice", "Succeed", "Fail"):
        pass
    elif ("Next" in s) == bool(s.get("End")):
        _fail(where[:-1], f"a {kind} state needs exactly one of Next or \"End\": true")
    if "End" in s and s["End"] is not True:
        _fail(f"{where}End", "must be true when present")
    if "Next" in s:
        _target(s["Next"], states, f"{where}Next")
    for f in ("InputPath", "OutputPath", "ItemsPath", "SecondsPath", "TimestampPath",
              "ErrorPath", "CausePath", "MaxConcurrencyPath", "TimeoutSecondsPath",
              "HeartbeatSecondsPath", "ToleratedFailurePercentagePath",
              "ToleratedFailureCountPath"):
        if f in s and not (s[f] is None and f in ("InputPath", "OutputPath")):
            _path(s[f], f"{where}{f}")
    if "ResultPath" in s and s["ResultPath"] is not None:
        _refpath(s["ResultPath"], f"{where}ResultPath")
    for f in ("Parameters", "ResultSelector", "ItemSelector"):
        if f in s:
            _template(s[f], f"{where}{f}")
    for f in ("ErrorPath", "CausePath"):
        if f in s and f[:-4] in s:
            _fail(f"{where}{f}", f"give {f[:-4]} or {f}, not both")
    getattr(_Checks, kind)(s, states, where)
    if "Retry" in s:
        _retry(s["Retry"], f"{where}Retry")
    if "Catch" in s:
        _catch(s["Catch"], states, f"{where}Catch")


class _Checks:
    @staticmethod
    def Task(s, states, where):
        res = s.get("Resource")
        if not isinstance(res, str) or not res:
            _fail(f"{where}Resource", "is required: a function name, a Lambda function ARN or "
                  "arn:aws:states:::lambda:invoke")
        if res.startswith("arn:") and not (res.startswith("arn:aws:states:::lambda:invoke")
                                           or ":lambda:" in res and ":function:" in res):
            _fail(f"{where}Resource", f"{res!r} is not supported; use a function name, "
                  "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or "
                  "arn:aws:states:::lambda:invoke")
        if res.startswith("arn:aws:states:::lambda:invoke"):
            if res != "arn:aws:states:::lambda:invoke":
                _fail(f"{where}Resource", "only the request-response lambda:invoke integration is "
                      "supported (no .sync or .waitForTaskToken)")
            params = s.get("Parameters")
            if not isinstance(params, dict) or not ("FunctionName" in params or
                                                    "FunctionName.$" in params):
                _fail(f"{where}Parameters", "arn:aws:states:::lambda:invoke needs "
                      "Parameters.FunctionName")
        for f in ("TimeoutSeconds", "HeartbeatSeconds"):
            if f in s:
                _positive_int(s[f], f"{where}{f}")
            if f in s and f"{f}Path" in s:
                _fail(f"{where}{f}Path", f"give {f} or {f}Path, not both")

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
                _fail(f"{where}{f}", "must be a string")

    @staticmethod
    def Wait(s, states, where):
        given = [f for f in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if f in s]
        if len(given) != 1:
            _fail(where[:-1], "a Wait state needs exactly one of Seconds, SecondsPath, "
                  "Timestamp or TimestampPath")
        if "Seconds" in s and (not isinstance(s["Seconds"], int) or isinstance(s["Seconds"], bool)
                               or s["Seconds"] < 0):
            _fail(f"{where}Seconds", "must be a non-negative integer")
        if "Timestamp" in s and choice.parse_timestamp(s["Timestamp"]) is None:
            _fail(f"{where}Timestamp", "must be an RFC 3339 timestamp like 2026-01-01T00:00:00Z")

    @staticmethod
    def Choice(s, states, where):
        rules = s.get("Choices")
        if not isinstance(rules, list) or not rules:
            _fail(f"{where}Choices", "must be a non-empty array of rules")
        for i, rule in enumerate(rules):
            _rule(rule, f"{where}Choices[{i}]", top=True)
            _target(rule.get("Next"), states, f"{where}Choices[{i}].Next")
        if "Default" in s:
            _target(s["Default"], states, f"{where}Default")

    @staticmethod
    def Parallel(s, states, where):
        branches = s.get("Branches")
        if not isinstance(branches, list) or not branches:
            _fail(f"{where}Branches", "must be a non-empty array of state machines")
        for i, b in enumerate(branches):
            _machine(b, f"{where}Branches[{i}].")

    @staticmethod
    def Map(s, states, where):
        for f in DISTRIBUTED:
            if f in s:
                _fail(f"{where}{f}", "distributed Map (S3 readers and writers) is not supported; "
                      "use an inline Map over ItemsPath")
        if "ItemProcessor" in s and "Iterator" in s:
            _fail(f"{where}Iterator", "give ItemProcessor or the older Iterator, not both")
        if "ItemSelector" in s and "Parameters" in s:
            _fail(f"{where}Parameters", "give ItemSelector or the older Parameters, not both")
        proc = s.get("ItemProcessor", s.get("Iterator"))
        if proc is None:
            _fail(f"{where}ItemProcessor", "is required: the state machine run for each item")
        _machine(proc, f"{where}ItemProcessor.")
        if "MaxConcurrency" in s:
            v = s["MaxConcurrency"]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                _fail(f"{where}MaxConcurrency", "must be a non-negative integer (0 = no limit)")
        if "ToleratedFailurePercentage" in s:
            v = s["ToleratedFailurePercentage"]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
                _fail(f"{where}ToleratedFailurePercentage", "must be a number in 0..100")
        if "ToleratedFailureCount" in s:
            v = s["ToleratedFailureCount"]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                _fail(f"{where}ToleratedFailureCount", "must be a non-negative integer")


def _rule(rule: Any, where: str, top: bool) -> None:
    if not isinstance(rule, dict):
        _fail(where, "must be an object")
    allowed_extra = {"Next", "Comment"} if top else {"Comment"}
    if top and "Next" not in rule:
        _fail(f"{where}.Next", "is required in a top-level choice rule")
    if not top and "Next" in rule:
        _fail(f"{where}.Next", "is only allowed in a top-level choice rule")
    for combinator in ("And", "Or"):
        if combinator in rule:
            sub = rule[combinator]
            if not isinstance(sub, list) or not sub:
                _fail(f"{where}.{combinator}", "must be a non-empty array of rules")
            for i, r in enumerate(sub):
                _rule(r, f"{where}.{combinator}[{i}]", top=False)
            _only(rule, {combinator} | allowed_extra, where)
            return
    if "Not" in rule:
        _rule(rule["Not"], f"{where}.Not", top=False)
        _only(rule, {"Not"} | allowed_extra, where)
        return
    if "Variable" not in rule:
        _fail(where, "needs a Variable and one comparison operator, or And/Or/Not")
    _path(rule["Variable"], f"{where}.Variable")
    ops = [k for k in rule if k not in {"Variable"} | allowed_extra]
    if len(ops) != 1 or ops[0] not in choice.OPERATORS:
        _fail(where, f"needs exactly one comparison operator; got {', '.join(ops) or 'none'} "
              f"(operators: StringEquals, NumericLessThanPath, IsPresent, ...)")
    op, value = ops[0], rule[ops[0]]
    if op.endswith("Path"):
        _path(value, f"{where}.{op}")
    elif op.startswith("Is") or op.startswith("Boolean"):
        if not isinstance(value, bool):
            _fail(f"{where}.{op}", "must be true or false")
    elif op.startswith("String"):
        if not isinstance(value, str):
            _fail(f"{where}.{op}", "must be a string")
    elif op.startswith("Numeric"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            _fail(f"{where}.{op}", "must be a number")
    elif op.startswith("Timestamp") and choice.parse_timestamp(value) is None:
        _fail(f"{where}.{op}", "must be an RFC 3339 timestamp like 2026-01-01T00:00:00Z")


def _only(rule: dict, allowed: set, where: str) -> None:
    extra = set(rule) - allowed
    if extra:
        _fail(where, f"unexpected {', '.join(sorted(extra))} beside {'/'.join(sorted(allowed))}")


def _retry(retry: Any, where: str) -> None:
    if not isinstance(retry, list):
        _fail(where, "must be an array of retriers")
    for i, r in enumerate(retry):
        w = f"{where}[{i}]"
        if not isinstance(r, dict):
            _fail(w, "must be an object")
        _only(r, RETRIER, w)
        _error_equals(r.get("ErrorEquals"), f"{w}.ErrorEquals")
        if "IntervalSeconds" in r:
            _positive_int(r["IntervalSeconds"], f"{w}.IntervalSeconds")
        if "MaxDelaySeconds" in r:
            _positive_int(r["MaxDelaySeconds"], f"{w}.MaxDelaySeconds")
        if "MaxAttempts" in r:
            v = r["MaxAttempts"]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                _fail(f"{w}.MaxAttempts", "must be a non-negative integer")
        if "BackoffRate" in r:
            v = r["BackoffRate"]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 1.0:
                _fail(f"{w}.BackoffRate", "must be a number >= 1.0")
        if r.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
            _fail(f"{w}.JitterStrategy", "must be NONE or FULL")


def _catch(catch: Any, states: dict, where: str) -> None:
    if not isinstance(catch, list):
        _fail(where, "must be an array of catchers")
    for i, c in enumerate(catch):
        w = f"{where}[{i}]"
        if not isinstance(c, dict):
            _fail(w, "must be an object")
        _only(c, CATCHER, w)
        _error_equals(c.get("ErrorEquals"), f"{w}.ErrorEquals")
        _target(c.get("Next"), states, f"{w}.Next")
        if c.get("ResultPath") is not None:
            _refpath(c["ResultPath"], f"{w}.ResultPath")


def _error_equals(names: Any, where: str) -> None:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        _fail(where, "must be a non-empty array of error names")
    if "States.ALL" in names and len(names) != 1:
        _fail(where, "States.ALL must appear alone")


def _target(name: Any, states: dict, where: str) -> None:
    if not isinstance(name, str) or name not in states:
        _fail(where, f"{name!r} is not a state of this machine; use one of {', '.join(states)}")


def _positive_int(v: Any, where: str) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        _fail(where, f"{v!r} must be a positive integer")


def _path(text: Any, where: str) -> None:
    try:
        paths.compile_path(text)
    except paths.PathError as exc:
        _fail(where, str(exc))


def _refpath(text: Any, where: str) -> None:
    try:
        paths.check_reference_path(text)
    except paths.PathError as exc:
        _fail(where, str(exc))


def _template(t: Any, where: str) -> None:
    if isinstance(t, dict):
        for k, v in t.items():
            if k.endswith(".$"):
                if not isinstance(v, str):
                    _fail(f"{where}.{k}", "a key ending in .$ needs a path or intrinsic string")
                if v.startswith("States."):
                    try:
                        intrinsics.parse(v)
                    except intrinsics.IntrinsicSyntaxError as exc:
                        _fail(f"{where}.{k}", str(exc))
                else:
                    _path(v, f"{where}.{k}")
            else:
                _template(v, f"{where}.{k}")
    elif isinstance(t, list):
        for i, v in enumerate(t):
            _template(v, f"{where}[{i}]")


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
        _fail(f"{where}States.{unreachable[0]}", "is unreachable from StartAt; remove it or "
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
        _fail(f"{where}States.{stuck[0]}", "can never reach a terminal state (End, Succeed or "
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
