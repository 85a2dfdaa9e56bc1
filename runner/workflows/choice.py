"""Choice rules: every comparison operator, its `...Path` variant, And/Or/Not and the Is* tests.

A comparison whose variable has another type than the operator compares (a string given to
NumericEquals) is false, as in Step Functions; a Variable that is not in the input fails the
state with States.Runtime (test it with IsPresent first).
"""

from __future__ import annotations

import operator
import re
from datetime import datetime
from typing import Any

from runner.workflows import paths

_CMP = {
    "Equals": operator.eq, "LessThan": operator.lt, "GreaterThan": operator.gt,
    "LessThanEquals": operator.le, "GreaterThanEquals": operator.ge,
}
KINDS = ("String", "Numeric", "Boolean", "Timestamp")
COMPARISONS = {f"{k}{c}" for k in KINDS for c in _CMP if not (k == "Boolean" and c != "Equals")}
OPERATORS = COMPARISONS | {f"{c}Path" for c in COMPARISONS} | {
    "StringMatches", "IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"}

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with an uppercase T and a zone (what ASL accepts), else None."""
    if not isinstance(value, str) or not _TS_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _typed(kind: str, v: Any):
    """`v` as the operator's kind compares it, or None when it is of another type."""
    if kind == "String":
        return v if isinstance(v, str) else None
    if kind == "Numeric":
        return v if _is_number(v) else None
    if kind == "Boolean":
        return v if isinstance(v, bool) else None
    return parse_timestamp(v)


def operator_of(rule: dict) -> str | None:
    ops = [k for k in rule if k in OPERATORS]
    return ops[0] if len(ops) == 1 else None


def matches(rule: dict, data: Any, context: Any) -> bool:
    if "And" in rule:
        return all(matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    op = operator_of(rule)
    var = rule["Variable"]
    if op == "IsPresent":
        return paths.present(var, context if var.startswith("$$") else data) == rule[op]
    value = paths.select(var, data, context, field="Variable")
    expected = rule[op]
    if op == "IsNull":
        return (value is None) == expected
    if op == "IsNumeric":
        return _is_number(value) == expected
    if op == "IsString":
        return isinstance(value, str) == expected
    if op == "IsBoolean":
        return isinstance(value, bool) == expected
    if op == "IsTimestamp":
        return (parse_timestamp(value) is not None) == expected
    if op == "StringMatches":
        return isinstance(value, str) and string_matches(value, expected)
    if op.endswith("Path"):
        op = op[:-4]
        expected = paths.select(expected, data, context, field="Variable")
    kind = next(k for k in KINDS if op.startswith(k))
    a, b = _typed(kind, value), _typed(kind, expected)
    if a is None or b is None:
        return False
    return _CMP[op[len(kind):]](a, b)


def string_matches(value: str, pattern: str) -> bool:
    """`*` matches any run of characters; `\\*` and `\\\\` are literal."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), value, re.DOTALL) is not None


__all__ = ["OPERATORS", "matches", "operator_of", "parse_timestamp", "string_matches"]
