"""What the fields of an Amazon States Language state may hold, checked at creation: paths
and reference paths (paths.py), payload templates and intrinsic calls (intrinsics.py), Choice
rules (choice.py), retriers and catchers, state names as transition targets. asl.py checks
the machine's shape (which fields each state type has, where transitions lead) and calls
these on the values it finds.

Each check raises InvalidDefinition naming the field (`where`, e.g.
``States.A.Retry[0].BackoffRate``) and what to give instead.
"""

from __future__ import annotations

from typing import Any

from runner.errors import InvalidDefinition
from runner.workflows import choice, intrinsics, paths

RETRIER = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds",
           "JitterStrategy", "Comment"}
CATCHER = {"ErrorEquals", "Next", "ResultPath", "Comment"}


def fail(where: str, message: str):
    raise InvalidDefinition(where, message)


def check_rule(rule: Any, where: str, top: bool) -> None:
    if not isinstance(rule, dict):
        fail(where, "must be an object")
    allowed_extra = {"Next", "Comment"} if top else {"Comment"}
    if top and "Next" not in rule:
        fail(f"{where}.Next", "is required in a top-level choice rule")
    if not top and "Next" in rule:
        fail(f"{where}.Next", "is only allowed in a top-level choice rule")
    for combinator in ("And", "Or"):
        if combinator in rule:
            sub = rule[combinator]
            if not isinstance(sub, list) or not sub:
                fail(f"{where}.{combinator}", "must be a non-empty array of rules")
            for i, r in enumerate(sub):
                check_rule(r, f"{where}.{combinator}[{i}]", top=False)
            _only(rule, {combinator} | allowed_extra, where)
            return
    if "Not" in rule:
        check_rule(rule["Not"], f"{where}.Not", top=False)
        _only(rule, {"Not"} | allowed_extra, where)
        return
    if "Variable" not in rule:
        fail(where, "needs a Variable and one comparison operator, or And/Or/Not")
    check_path(rule["Variable"], f"{where}.Variable")
    ops = [k for k in rule if k not in {"Variable"} | allowed_extra]
    if len(ops) != 1 or ops[0] not in choice.OPERATORS:
        fail(where, f"needs exactly one comparison operator; got {', '.join(ops) or 'none'} "
             f"(operators: StringEquals, NumericLessThanPath, IsPresent, ...)")
    op, value = ops[0], rule[ops[0]]
    if op.endswith("Path"):
        check_path(value, f"{where}.{op}")
    elif op.startswith("Is") or op.startswith("Boolean"):
        if not isinstance(value, bool):
            fail(f"{where}.{op}", "must be true or false")
    elif op.startswith("String"):
        if not isinstance(value, str):
            fail(f"{where}.{op}", "must be a string")
    elif op.startswith("Numeric"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"{where}.{op}", "must be a number")
    elif op.startswith("Timestamp") and choice.parse_timestamp(value) is None:
        fail(f"{where}.{op}", "must be an RFC 3339 timestamp like 2026-01-01T00:00:00Z")


def _only(rule: dict, allowed: set, where: str) -> None:
    extra = set(rule) - allowed
    if extra:
        fail(where, f"unexpected {', '.join(sorted(extra))} beside {'/'.join(sorted(allowed))}")


def check_retry(retry: Any, where: str) -> None:
    for w, r in _error_handlers(retry, where, "retriers", RETRIER):
        if "IntervalSeconds" in r:
            check_positive_int(r["IntervalSeconds"], f"{w}.IntervalSeconds")
        if "MaxDelaySeconds" in r:
            check_positive_int(r["MaxDelaySeconds"], f"{w}.MaxDelaySeconds")
        if "MaxAttempts" in r:
            check_non_negative_int(r["MaxAttempts"], f"{w}.MaxAttempts")
        if "BackoffRate" in r:
            v = r["BackoffRate"]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 1.0:
                fail(f"{w}.BackoffRate", "must be a number >= 1.0")
        if r.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
            fail(f"{w}.JitterStrategy", "must be NONE or FULL")


def check_catch(catch: Any, states: dict, where: str) -> None:
    for w, c in _error_handlers(catch, where, "catchers", CATCHER):
        check_target(c.get("Next"), states, f"{w}.Next")
        if c.get("ResultPath") is not None:
            check_reference_path(c["ResultPath"], f"{w}.ResultPath")


def _error_handlers(handlers: Any, where: str, what: str, fields: set):
    """(where, handler) for each retrier or catcher once what they share is checked: an array
    of objects with only `fields`, each naming the errors it handles."""
    if not isinstance(handlers, list):
        fail(where, f"must be an array of {what}")
    for i, h in enumerate(handlers):
        w = f"{where}[{i}]"
        if not isinstance(h, dict):
            fail(w, "must be an object")
        _only(h, fields, w)
        _error_equals(h.get("ErrorEquals"), f"{w}.ErrorEquals")
        yield w, h


def _error_equals(names: Any, where: str) -> None:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        fail(where, "must be a non-empty array of error names")
    if "States.ALL" in names and len(names) != 1:
        fail(where, "States.ALL must appear alone")


def check_target(name: Any, states: dict, where: str) -> None:
    if not isinstance(name, str) or name not in states:
        fail(where, f"{name!r} is not a state of this machine; use one of {', '.join(states)}")


def check_positive_int(v: Any, where: str) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        fail(where, f"{v!r} must be a positive integer")


def check_non_negative_int(v: Any, where: str, note: str = "") -> None:
    """`note`: what 0 means, where it means something."""
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        fail(where, "must be a non-negative integer" + note)


def check_path(text: Any, where: str) -> None:
    try:
        paths.compile_path(text)
    except paths.PathError as exc:
        fail(where, str(exc))


def check_reference_path(text: Any, where: str) -> None:
    try:
        paths.check_reference_path(text)
    except paths.PathError as exc:
        fail(where, str(exc))


def check_template(t: Any, where: str) -> None:
    if isinstance(t, dict):
        for k, v in t.items():
            if k.endswith(".$"):
                if not isinstance(v, str):
                    fail(f"{where}.{k}", "a key ending in .$ needs a path or intrinsic string")
                if v.startswith("States."):
                    check_intrinsic(v, f"{where}.{k}")
                else:
                    check_path(v, f"{where}.{k}")
            else:
                check_template(v, f"{where}.{k}")
    elif isinstance(t, list):
        for i, v in enumerate(t):
            check_template(v, f"{where}[{i}]")


def check_intrinsic(text: str, where: str) -> None:
    try:
        intrinsics.parse(text)
    except intrinsics.IntrinsicSyntaxError as exc:
        fail(where, str(exc))
