"""Validation at creation: every refusal names the state and field and says what to do."""

from __future__ import annotations

import json

import pytest

from runner.errors import InvalidDefinition
from runner.workflows import asl


def ok(states, start="A", **top):
    return {"StartAt": start, "States": states, **top}


def refused(definition) -> str:
    with pytest.raises(InvalidDefinition) as info:
        asl.validate(json.dumps(definition) if isinstance(definition, dict) else definition)
    return info.value.message


def test_a_valid_machine_passes():
    d = ok({"A": {"Type": "Task", "Resource": "f", "Retry": [{"ErrorEquals": ["States.ALL"],
                                                            "BackoffRate": 1.5}],
                  "Catch": [{"ErrorEquals": ["X"], "Next": "B"}], "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"And": [
                {"Variable": "$.a", "NumericGreaterThanPath": "$.b"},
                {"Not": {"Variable": "$.c", "IsPresent": True}}], "Next": "C"}], "Default": "D"},
            "C": {"Type": "Pass", "Parameters": {"x.$": "States.Format('{}', $.a)"}, "End": True},
            "D": {"Type": "Succeed"}})
    assert asl.validate(json.dumps(d))["StartAt"] == "A"


@pytest.mark.parametrize("definition, words", [
    ("{not json", ["definition", "not valid JSON"]),
    (ok({"A": {"Type": "Pass", "Next": "Nowhere"}}), ["States.A.Next", "'Nowhere'", "not a state"]),
    (ok({"A": {"Type": "Pass", "End": True}, "B": {"Type": "Pass", "End": True}}),
     ["States.B", "unreachable"]),
    (ok({"A": {"Type": "Pass", "End": True, "Resut": 1}}), ["States.A.Resut", "not a field"]),
    (ok({"A": {"Type": "Pass", "InputPath": "$.a[", "End": True}}), ["States.A.InputPath"]),
    (ok({"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}}),
     ["States.A.ResultPath", "reference path"]),
    (ok({"A": {"Type": "Pass"}}), ["States.A", "Next or"]),
    (ok({"A": {"Type": "Bogus", "End": True}}), ["States.A.Type", "Bogus"]),
    (ok({"A": {"Type": "Task", "End": True}}), ["States.A.Resource", "required"]),
    (ok({"A": {"Type": "Wait", "End": True}}), ["States.A", "Seconds"]),
    (ok({"A": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": 1,
                                              "Next": "A"}]}}),
     ["Choices[0].StringEquals", "string"]),
    (ok({"A": {"Type": "Choice", "Choices": [{"Variable": "$.a", "Next": "A"}]}}),
     ["Choices[0]", "operator"]),
    (ok({"A": {"Type": "Pass", "Parameters": {"x.$": "States.Nope(1)"}, "End": True}}),
     ["Parameters.x.$", "not an intrinsic"]),
    (ok({"A": {"Type": "Task", "Resource": "f", "End": True,
               "Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}}), ["Retry[0].ErrorEquals"]),
    (ok({"A": {"Type": "Task", "Resource": "f", "End": True,
               "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}}), ["BackoffRate"]),
    (ok({"A": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {}}], "End": True}}),
     ["Branches[0].States"]),
    (ok({"A": {"Type": "Map", "End": True}}), ["States.A.ItemProcessor", "required"]),
    (ok({"A": {"Type": "Map", "ItemReader": {}, "ItemProcessor": {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}}, "End": True}}), ["ItemReader", "distributed"]),
    (ok({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}),
     ["terminal state"]),
    (ok({"A": {"Type": "Pass", "End": True}}, QueryLanguage="JSONata"), ["QueryLanguage", "JSONata"]),
    (ok({"A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}}),
     ["States.A.Resource", "not supported"]),
    (ok({"A": {"Type": "Pass", "End": True}}, start="Z"), ["StartAt", "'Z'"]),
    (ok({"A": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}]}}),
     ["Branches[0].States.A", "unique"]),
])
def test_refusals_name_the_field(definition, words):
    message = refused(definition)
    for w in words:
        assert w in message, message
