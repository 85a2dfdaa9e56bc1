"""The 18 intrinsic functions and the argument syntax."""

from __future__ import annotations

import uuid

import pytest

from runner.errors import WorkflowFailure
from runner.workflows import intrinsics

DATA = {"name": "ada", "arr": [1, 2, 2, 3], "obj": {"a": 1}, "n": 7, "s": "a,b;c"}
CTX = {"Execution": {"Name": "e1"}}


@pytest.mark.parametrize("text, expected", [
    ("States.Format('Hello {}, n={}', $.name, $.n)", "Hello ada, n=7"),
    ("States.Format('esc \\\\{} {}', $.name)", "esc {} ada"),
    ("States.Format('{}', $$.Execution.Name)", "e1"),
    ("States.StringToJson('{\"k\": [1]}')", {"k": [1]}),
    ("States.JsonToString($.obj)", '{"a":1}'),
    ("States.Array(1, 'two', $.n, null, true)", [1, "two", 7, None, True]),
    ("States.ArrayPartition($.arr, 3)", [[1, 2, 2], [3]]),
    ("States.ArrayContains($.arr, 3)", True),
    ("States.ArrayContains($.arr, 9)", False),
    ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
    ("States.ArrayGetItem($.arr, 3)", 3),
    ("States.ArrayLength($.arr)", 4),
    ("States.ArrayUnique($.arr)", [1, 2, 3]),
    ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
    ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
    ("States.Hash('input data', 'SHA-1')", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    ("States.JsonMerge($.obj, States.StringToJson('{\"b\": 2}'), false)", {"a": 1, "b": 2}),
    ("States.MathAdd($.n, -2)", 5),
    ("States.StringSplit($.s, ',;')", ["a", "b", "c"]),
    ("States.ArrayLength(States.Array(1, 2))", 2),
])
def test_functions(text, expected):
    assert intrinsics.evaluate(text, DATA, CTX) == expected


def test_random_and_uuid():
    assert 1 <= intrinsics.evaluate("States.MathRandom(1, 10)", DATA, CTX) <= 10
    seeded = [intrinsics.evaluate("States.MathRandom(1, 1000, 42)", DATA, CTX) for _ in range(2)]
    assert seeded[0] == seeded[1]
    assert uuid.UUID(intrinsics.evaluate("States.UUID()", DATA, CTX)).version == 4


def test_every_listed_function_is_implemented():
    assert len(intrinsics.FUNCTIONS) == 18 and set(intrinsics.FUNCTIONS) == set(intrinsics._IMPL)


@pytest.mark.parametrize("text", [
    "States.MathAdd('a', 1)", "States.ArrayGetItem($.arr, 10)", "States.Format('{} {}', 1)",
    "States.Hash('x', 'CRC')", "States.StringToJson('{bad')", "States.Format('{}', $.obj)",
])
def test_bad_arguments_fail_with_intrinsic_failure(text):
    with pytest.raises(WorkflowFailure) as info:
        intrinsics.evaluate(text, DATA, CTX)
    assert info.value.error == "States.IntrinsicFailure"


@pytest.mark.parametrize("text", ["States.Format('x'", "States.Nope()", "States.Array(1 2)",
                                  "States.Array(1))"])
def test_syntax_errors(text):
    with pytest.raises(intrinsics.IntrinsicSyntaxError):
        intrinsics.parse(text)
