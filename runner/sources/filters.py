"""FilterCriteria: Lambda's event pattern syntax, applied to each record before invocation.

A record is delivered when ANY of the mapping's patterns matches it; others are acknowledged
without invoking the function (Lambda drops them too). As on Lambda, a pattern sees the record
in its event shape with the payload parsed when it is JSON: Kinesis `data` and SQS `body` are
replaced by the decoded JSON document (a payload that is not JSON matches only patterns that
do not look inside it).

Supported: exact values (strings, numbers, null, booleans), `prefix`, `suffix`,
`anything-but` (a value or a list), `numeric` (pairs of <, <=, =, >, >= and a number),
`exists`, nested objects, and arrays in the record (any element may match). A pattern's keys
are ANDed; the values in one list are ORed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

_MISSING = object()


def compile_patterns(patterns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [json.loads(p) for p in patterns]


def filterable(shaped: dict[str, Any]) -> dict[str, Any]:
    """The record as patterns see it: the payload decoded from JSON where it is JSON."""
    doc = dict(shaped)
    if "kinesis" in doc:
        try:
            doc["data"] = json.loads(base64.b64decode(doc["kinesis"]["data"]))
        except ValueError:
            pass
    elif "body" in doc:
        try:
            doc["body"] = json.loads(doc["body"])
        except ValueError:
            pass
    return doc


def matches_any(patterns: list[dict[str, Any]], shaped: dict[str, Any]) -> bool:
    if not patterns:
        return True
    doc = filterable(shaped)
    return any(_match(p, doc) for p in patterns)


def _match(pattern: dict[str, Any], doc: Any) -> bool:
    for key, rule in pattern.items():
        value = doc.get(key, _MISSING) if isinstance(doc, dict) else _MISSING
        if isinstance(rule, dict):
            if value is _MISSING or not _match(rule, value):
                return False
        elif isinstance(rule, list):
            if not any(_value_matches(r, value) for r in rule):
                return False
        else:
            return False  # Lambda rejects a leaf that is not a list; here it just never matches
    return True


def _value_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return (value is not _MISSING) == bool(rule["exists"])
        if value is _MISSING:
            return False
        if isinstance(value, list):
            return any(_value_matches(rule, v) for v in value)
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if "suffix" in rule:
            return isinstance(value, str) and value.endswith(rule["suffix"])
        if "anything-but" in rule:
            excluded = rule["anything-but"]
            excluded = excluded if isinstance(excluded, list) else [excluded]
            return value not in excluded
        if "numeric" in rule:
            return _numeric(rule["numeric"], value)
        return False
    if value is _MISSING:
        return False
    if isinstance(value, list):
        return rule in value
    return rule == value and type(rule) is type(value) or (
        isinstance(rule, (int, float)) and not isinstance(rule, bool)
        and isinstance(value, (int, float)) and not isinstance(value, bool) and rule == value)


def _numeric(conds: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    ops = {"<": value.__lt__, "<=": value.__le__, "=": value.__eq__, ">": value.__gt__, ">=": value.__ge__}
    for i in range(0, len(conds) - 1, 2):
        op = ops.get(conds[i])
        if op is None or op(conds[i + 1]) is not True:
            return False
    return True
