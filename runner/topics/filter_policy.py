"""SNS subscription filter policies, applied to message attributes (FilterPolicyScope
MessageAttributes, SNS's default).

A policy is a JSON object: attribute name -> list of conditions. A message matches when EVERY
named attribute matches AT LEAST ONE of its conditions. Conditions:

    "red"                               exact string (String, or any element of String.Array)
    5                                   exact number (Number attributes)
    {"prefix": "img-"}                  {"suffix": ".jpg"}   {"equals-ignore-case": "RED"}
    {"anything-but": "red" | ["a", 1] | {"prefix": "x"}}   the attribute exists and is none of
    {"numeric": [">", 0, "<=", 100]}    one or two comparisons (=, <, <=, >, >=) on a Number
    {"exists": true | false}            present / absent (the only match for an absent one)

Limits as SNS's: at most 5 attribute names, at most 150 combinations of conditions.
"""

from __future__ import annotations

import json
import math
from typing import Any

from runner.errors import InvalidParameter

MAX_KEYS = 5
MAX_COMBINATIONS = 150
_OPS = {"=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _bad(why: str) -> InvalidParameter:
    return InvalidParameter("filter_policy", f"{why}; see docs/events.md for SNS's syntax")


def check(policy: Any) -> dict[str, list[Any]]:
    if not isinstance(policy, dict) or not policy:
        raise _bad("must be a non-empty JSON object of attribute name -> [conditions]")
    if len(policy) > MAX_KEYS:
        raise _bad(f"names {len(policy)} attributes; SNS allows {MAX_KEYS}")
    combos = 1
    for name, conds in policy.items():
        if not isinstance(conds, list) or not conds:
            raise _bad(f"{name!r}: conditions must be a non-empty list")
        for c in conds:
            _check_condition(name, c)
        combos *= len(conds)
    if combos > MAX_COMBINATIONS:
        raise _bad(f"has {combos} combinations; SNS allows {MAX_COMBINATIONS}")
    return policy


def _check_condition(name: str, c: Any) -> None:
    if isinstance(c, bool) or c is None:
        raise _bad(f"{name!r}: {json.dumps(c)} is not a condition")
    if isinstance(c, (str, int, float)):
        return
    if not isinstance(c, dict) or len(c) != 1:
        raise _bad(f"{name!r}: {json.dumps(c)} must be a value or a one-key operator object")
    (op, arg), = c.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise _bad(f"{name!r}: {op} takes a string")
    elif op == "anything-but":
        if isinstance(arg, dict):
            if list(arg) != ["prefix"] or not isinstance(arg["prefix"], str):
                raise _bad(f"{name!r}: anything-but takes a value, a list or {{\"prefix\": s}}")
        elif not isinstance(arg, (str, int, float, list)) or isinstance(arg, bool):
            raise _bad(f"{name!r}: anything-but takes a value, a list or {{\"prefix\": s}}")
    elif op == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4) or \
                any(arg[i] not in _OPS for i in range(0, len(arg), 2)) or \
                any(not _is_number(arg[i]) for i in range(1, len(arg), 2)):
            raise _bad(f"{name!r}: numeric takes [op, n] or [op, n, op, n] with op in "
                       f"{', '.join(_OPS)}")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise _bad(f"{name!r}: exists takes true or false")
    else:
        raise _bad(f"{name!r}: unknown operator {op!r}")


def matches(policy: dict[str, list[Any]] | None, attributes: dict[str, dict[str, Any]]) -> bool:
    """Does a message with these SNS MessageAttributes ({name: {Type, Value}}) pass?"""
    if not policy:
        return True
    return all(any(_cond(c, attributes.get(name)) for c in conds)
               for name, conds in policy.items())


def _values(attr: dict[str, Any]) -> tuple[str, list[Any]]:
    kind, value = attr.get("Type", "String"), attr.get("Value")
    if kind == "Number":
        try:
            return "Number", [float(value)]
        except (TypeError, ValueError):
            return "Number", []
    if kind == "String.Array":
        try:
            items = json.loads(value)
        except (TypeError, ValueError):
            return kind, []
        return kind, items if isinstance(items, list) else []
    if kind == "Binary":
        return kind, []
    return "String", [value]


def _cond(c: Any, attr: dict[str, Any] | None) -> bool:
    if isinstance(c, dict) and "exists" in c:
        return (attr is not None) == c["exists"]
    if attr is None:
        return False
    kind, values = _values(attr)
    return any(_one(c, kind, v) for v in values)


def _one(c: Any, kind: str, v: Any) -> bool:
    if isinstance(c, str):
        return isinstance(v, str) and v == c
    if _is_number(c):
        return _is_number(v) and math.isclose(float(v), float(c))
    (op, arg), = c.items()
    if op == "prefix":
        return isinstance(v, str) and v.startswith(arg)
    if op == "suffix":
        return isinstance(v, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == arg.lower()
    if op == "numeric":
        if not _is_number(v):
            return False
        return all(_OPS[arg[i]](float(v), float(arg[i + 1])) for i in range(0, len(arg), 2))
    if op == "anything-but":
        if isinstance(arg, dict):
            return isinstance(v, str) and not v.startswith(arg["prefix"])
        banned = arg if isinstance(arg, list) else [arg]
        return not any(_one(b, kind, v) for b in banned)
    return False


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
