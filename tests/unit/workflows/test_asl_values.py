"""What a state's fields may hold (runner/workflows/asl_values.py), checked on the values alone:
each refusal names the field it was given and says what to give instead. test_asl.py checks
the same refusals through validate(), where the field names come from the machine."""

from __future__ import annotations

import pytest

from runner.errors import InvalidDefinition
from runner.workflows import asl_values as values

STATES = {"A": {"Type": "Pass", "End": True}, "B": {"Type": "Succeed"}}


@pytest.mark.parametrize("check, args", [
    (values.check_path, ("$.items[0].id", "F")),
    (values.check_reference_path, ("$.result", "F")),
    (values.check_template, ({"a": [{"b.$": "$.x"}, {"c.$": "States.Array($.y, 1)"}], "d": 1}, "F")),
    (values.check_rule, ({"Or": [{"Variable": "$.n", "NumericGreaterThan": 1},
                                 {"Not": {"Variable": "$.s", "StringMatches": "a*"}}],
                          "Next": "A"}, "F", True)),
    (values.check_retry, ([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 2,
                            "MaxAttempts": 0, "BackoffRate": 1.0, "JitterStrategy": "FULL"}], "F")),
    (values.check_catch, ([{"ErrorEquals": ["States.ALL"], "Next": "B", "ResultPath": None}],
                          STATES, "F")),
])
def test_values_the_language_allows_pass(check, args):
    check(*args)


@pytest.mark.parametrize("check, args, words", [
    (values.check_positive_int, (True, "States.A.TimeoutSeconds"),
     ["States.A.TimeoutSeconds", "positive integer"]),
    (values.check_target, ("C", STATES, "States.A.Next"), ["States.A.Next", "'C'", "one of A, B"]),
    (values.check_non_negative_int, (-1, "States.A.MaxConcurrency", " (0 = no limit)"),
     ["States.A.MaxConcurrency", "non-negative integer (0 = no limit)"]),
    (values.check_retry, ([{"ErrorEquals": ["X"], "MaxAttempts": 1.5}], "States.A.Retry"),
     ["Retry[0].MaxAttempts", "non-negative integer"]),
    (values.check_retry, ({"ErrorEquals": ["X"]}, "States.A.Retry"),
     ["States.A.Retry", "array of retriers"]),
    (values.check_catch, ([["X"]], STATES, "States.A.Catch"), ["Catch[0]", "must be an object"]),
    (values.check_template, ({"list": [{"x.$": 3}]}, "States.A.Parameters"),
     ["States.A.Parameters.list[0].x.$", "path or intrinsic"]),
    (values.check_rule, ({"And": [{"Variable": "$.a", "IsNull": True, "Next": "B"}], "Next": "A"},
                         "States.A.Choices[0]", True),
     ["Choices[0].And[0].Next", "only allowed in a top-level"]),
    (values.check_rule, ({"Variable": "$.a", "TimestampEquals": "yesterday", "Next": "A"},
                         "States.A.Choices[0]", True),
     ["Choices[0].TimestampEquals", "RFC 3339"]),
    (values.check_retry, ([{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}], "States.A.Retry"),
     ["Retry[0].JitterStrategy", "NONE or FULL"]),
    (values.check_retry, ([{"ErrorEquals": ["X"], "Backoff": 2}], "States.A.Retry"),
     ["Retry[0]", "unexpected Backoff"]),
    (values.check_catch, ([{"ErrorEquals": [], "Next": "B"}], STATES, "States.A.Catch"),
     ["Catch[0].ErrorEquals", "non-empty"]),
    (values.check_catch, ([{"ErrorEquals": ["X"], "Next": "B", "ResultPath": "$.a[*]"}], STATES,
                          "States.A.Catch"), ["Catch[0].ResultPath"]),
    (values.check_intrinsic, ("States.Format(", "States.A.CausePath"), ["States.A.CausePath"]),
])
def test_refusals_name_the_field_given(check, args, words):
    with pytest.raises(InvalidDefinition) as info:
        check(*args)
    for w in words:
        assert w in info.value.message, info.value.message
