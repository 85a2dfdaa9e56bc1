"""Choice rules: every operator, its Path variant, And/Or/Not, the Is* tests."""

from __future__ import annotations

import pytest

from runner.errors import WorkflowFailure
from runner.workflows import choice

DATA = {"s": "beta", "n": 5, "b": True, "t": "2026-01-02T00:00:00Z", "nul": None,
        "o": {"s2": "beta", "n2": 5.0, "b2": True, "t2": "2026-01-02T00:00:00+00:00"}}


@pytest.mark.parametrize("op, value, expected", [
    ("StringEquals", "beta", True), ("StringLessThan", "gamma", True),
    ("StringGreaterThan", "alpha", True), ("StringLessThanEquals", "beta", True),
    ("StringGreaterThanEquals", "gamma", False),
    ("NumericEquals", 5, True), ("NumericLessThan", 5, False), ("NumericGreaterThan", 4.5, True),
    ("NumericLessThanEquals", 5, True), ("NumericGreaterThanEquals", 6, False),
    ("BooleanEquals", True, True),
    ("TimestampEquals", "2026-01-02T00:00:00Z", True),
    ("TimestampLessThan", "2026-01-03T00:00:00Z", True),
    ("TimestampGreaterThan", "2026-01-01T00:00:00Z", True),
    ("TimestampLessThanEquals", "2026-01-02T00:00:00Z", True),
    ("TimestampGreaterThanEquals", "2026-01-03T00:00:00Z", False),
])
def test_comparisons(op, value, expected):
    var = {"String": "$.s", "Numeric": "$.n", "Boolean": "$.b", "Timestamp": "$.t"}[
        next(k for k in choice.KINDS if op.startswith(k))]
    assert choice.matches({"Variable": var, op: value}, DATA, {}) is expected


@pytest.mark.parametrize("op, var, path", [
    ("StringEqualsPath", "$.s", "$.o.s2"), ("NumericEqualsPath", "$.n", "$.o.n2"),
    ("BooleanEqualsPath", "$.b", "$.o.b2"), ("TimestampEqualsPath", "$.t", "$.o.t2"),
    ("NumericLessThanEqualsPath", "$.n", "$.o.n2"), ("StringGreaterThanEqualsPath", "$.s", "$.o.s2"),
])
def test_path_variants(op, var, path):
    assert choice.matches({"Variable": var, op: path}, DATA, {})


def test_every_operator_is_known():
    # 5 String, 5 Numeric, 5 Timestamp, 1 Boolean; each with a Path variant; 7 more.
    assert len(choice.COMPARISONS) == 16 and len(choice.OPERATORS) == 16 * 2 + 7


def test_type_mismatch_is_false():
    assert choice.matches({"Variable": "$.s", "NumericEquals": 5}, DATA, {}) is False
    assert choice.matches({"Variable": "$.b", "NumericEquals": 1}, DATA, {}) is False


@pytest.mark.parametrize("rule, expected", [
    ({"Variable": "$.nul", "IsNull": True}, True), ({"Variable": "$.x", "IsPresent": False}, True),
    ({"Variable": "$.n", "IsNumeric": True}, True), ({"Variable": "$.b", "IsNumeric": True}, False),
    ({"Variable": "$.s", "IsString": True}, True), ({"Variable": "$.b", "IsBoolean": True}, True),
    ({"Variable": "$.t", "IsTimestamp": True}, True), ({"Variable": "$.s", "IsTimestamp": True}, False),
    ({"And": [{"Variable": "$.n", "NumericGreaterThan": 1},
              {"Not": {"Variable": "$.s", "StringEquals": "x"}}]}, True),
    ({"Or": [{"Variable": "$.n", "NumericGreaterThan": 10},
             {"Variable": "$.s", "StringMatches": "b*a"}]}, True),
])
def test_tests_and_combinators(rule, expected):
    assert choice.matches(rule, DATA, {}) is expected


def test_string_matches_escapes():
    assert choice.string_matches("log-*.txt", "log-\\*.txt")
    assert not choice.string_matches("log-1.txt", "log-\\*.txt")
    assert choice.string_matches("a.b", "*.*")


def test_missing_variable_is_a_runtime_error():
    with pytest.raises(WorkflowFailure) as info:
        choice.matches({"Variable": "$.nope", "StringEquals": "x"}, DATA, {})
    assert info.value.error == "States.Runtime"
