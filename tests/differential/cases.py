"""The differential corpus: state machines (hand-written, then generated) with their inputs,
and definitions for the validator comparison. Deterministic: a fixed seed."""

from __future__ import annotations

import random

from runner.workflows import choice

INPUT = {"v": 2, "zero": 0, "s": "beta", "n": 5, "f": 2.5, "b": True, "nul": None, "arr": [3, 1, 2, 1],
         "obj": {"a": 1, "k": {"d": [1, 2]}}, "t": "2026-01-02T03:04:05Z", "items": [1, 2, 3],
         "words": "a,b,c", "other": {"s": "alpha", "n": 7, "b": False,
                                     "t": "2025-12-31T00:00:00Z"}}


def one(state: dict, name: str = "A") -> dict:
    return {"StartAt": name, "States": {name: {**state, "End": True}}}


def seq(*states: tuple[str, dict]) -> dict:
    out = {}
    for i, (name, s) in enumerate(states):
        s = dict(s)
        if s["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in s:
            if i + 1 < len(states):
                s["Next"] = states[i + 1][0]
            else:
                s["End"] = True
        out[name] = s
    return {"StartAt": states[0][0], "States": out}


def branch(state: dict, name: str = "B") -> dict:
    return one(state, name)


HAND = [
    one({"Type": "Pass"}),
    one({"Type": "Pass", "Result": {"x": [1, 2]}}),
    one({"Type": "Pass", "Result": 5, "ResultPath": "$.r"}),
    one({"Type": "Pass", "Result": 5, "ResultPath": None}),
    one({"Type": "Pass", "InputPath": "$.obj", "ResultPath": "$.k.e"}),
    one({"Type": "Pass", "OutputPath": "$.obj.k"}),
    one({"Type": "Pass", "InputPath": "$.obj", "Parameters": {"x.$": "$.k.d", "c": 1}}),
    one({"Type": "Pass", "Parameters": {"id.$": "$$.State.Name", "deep": {"a.$": "$.s"}}}),
    one({"Type": "Pass", "Parameters": {"m.$": "$.arr[1]", "all.$": "$.arr[*]"}}),
    one({"Type": "Pass", "InputPath": "$.missing"}),
    one({"Type": "Task", "Resource": "double"}),
    one({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:inc",
         "ResultPath": "$.res"}),
    one({"Type": "Task", "Resource": "double", "ResultSelector": {"d.$": "$.v"},
         "ResultPath": "$.out", "OutputPath": "$.out"}),
    one({"Type": "Task", "Resource": "echo", "Parameters": {"v.$": "$.n", "k": "x"}}),
    one({"Type": "Task", "Resource": "fail", "Parameters": {"errorType": "Boom"}}),
    {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "fail", "Parameters": {"errorType": "Boom"},
              "Catch": [{"ErrorEquals": ["Boom"], "Next": "C"}], "End": True},
        "C": {"Type": "Pass", "End": True}}},
    seq(("A", {"Type": "Task", "Resource": "fail", "Parameters": {"errorType": "Boom"},
               "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "C"}]}),
        ("C", {"Type": "Pass", "Parameters": {"e.$": "$.err.Error"}})),
    seq(("A", {"Type": "Task", "Resource": "fail", "Parameters": {"errorType": "Boom"},
               "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2}],
               "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": None,
                          "Next": "C"}]}),
        ("C", {"Type": "Succeed"})),
    one({"Type": "Task", "Resource": "fail", "Parameters": {"errorType": "Other"},
         "Catch": [{"ErrorEquals": ["Boom"], "Next": "A"}]}),
    seq(("A", {"Type": "Wait", "Seconds": 0}), ("B", {"Type": "Pass", "Result": 1})),
    seq(("A", {"Type": "Wait", "SecondsPath": "$.zero"}), ("B", {"Type": "Succeed"})),
    seq(("A", {"Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z", "OutputPath": "$.obj"})),
    {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}},
    {"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.s", "CausePath": "$.words"}}},
    {"StartAt": "S", "States": {"S": {"Type": "Succeed", "OutputPath": "$.obj"}}},
    one({"Type": "Parallel", "Branches": [branch({"Type": "Task", "Resource": "double"}),
                                          branch({"Type": "Pass", "Result": "x"}, "B2")]}),
    one({"Type": "Parallel", "Branches": [branch({"Type": "Pass", "InputPath": "$.obj"})],
         "ResultSelector": {"first.$": "$[0]"}, "ResultPath": "$.p"}),
    one({"Type": "Parallel", "Branches": [
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "BranchFailed"}}}]}),
    seq(("A", {"Type": "Parallel", "Branches": [
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "X"}}}],
        "Catch": [{"ErrorEquals": ["X"], "ResultPath": "$.caught", "Next": "C"}]}),
        ("C", {"Type": "Pass", "OutputPath": "$.caught.Error"})),
    one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": one({"Type": "Pass"}, "P")}),
    one({"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {
        "i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "s.$": "$.s"},
        "ItemProcessor": one({"Type": "Task", "Resource": "echo"}, "P")}),
    one({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ResultPath": "$.m",
         "ItemProcessor": one({"Type": "Pass", "Parameters": {"x.$": "States.MathAdd($, 10)"}},
                              "P")}),
    one({"Type": "Map", "ItemsPath": "$.obj", "ItemProcessor": one({"Type": "Pass"}, "P")}),
    one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}],
              "Default": "S"},
        "F": {"Type": "Fail", "Error": "Two"}, "S": {"Type": "Succeed"}}}}),
    {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 9,
                                             "Next": "S"}]},
        "S": {"Type": "Succeed"}}},
    {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 9,
                                             "Next": "S"}], "Default": "D",
              "OutputPath": "$.obj"},
        "S": {"Type": "Succeed"}, "D": {"Type": "Pass", "Result": "default", "End": True}}},
    seq(("A", {"Type": "Task", "Resource": "inc"}), ("B", {"Type": "Task", "Resource": "inc"}),
        ("C", {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericLessThan": 6,
                                              "Next": "A"}], "Default": "D"}),
        ("D", {"Type": "Succeed"})),
]

# Deterministic intrinsic calls (MathRandom and UUID are random on both sides; tested in units).
INTRINSICS = [
    "States.Format('x={} s={}', $.v, $.s)", "States.Format('{}', $.obj)",
    "States.Format('plain')", "States.StringToJson('{\"a\": [1, 2]}')",
    "States.JsonToString($.obj)", "States.Array($.v, 'x', $.arr)", "States.Array()",
    "States.ArrayPartition($.arr, 3)", "States.ArrayPartition($.items, 1)",
    "States.ArrayContains($.arr, 2)", "States.ArrayContains($.arr, 9)",
    "States.ArrayRange(1, 9, 2)", "States.ArrayRange(5, 1, -2)", "States.ArrayGetItem($.arr, 0)",
    "States.ArrayLength($.arr)", "States.ArrayUnique($.arr)", "States.Base64Encode($.s)",
    "States.Base64Decode('YmV0YQ==')", "States.Hash($.s, 'MD5')", "States.Hash($.s, 'SHA-1')",
    "States.Hash($.s, 'SHA-256')", "States.Hash($.s, 'SHA-384')", "States.Hash($.s, 'SHA-512')",
    "States.JsonMerge($.obj, $.other, false)", "States.MathAdd($.v, 3)",
    "States.MathAdd(-4, $.n)", "States.StringSplit($.words, ',')",
    "States.ArrayLength(States.Array(1, 2, 3))", "States.MathAdd($.v, 'x')",
    "States.ArrayGetItem($.arr, 10)", "States.Base64Encode(States.JsonToString($.arr))",
    "States.Format('{} {}', $.v)", "States.StringSplit('a.b+c', '.+')",
]

VALUES = {
    "String": ["alpha", "beta", "gamma", ""],
    "Numeric": [-1, 2, 2.5, 5, 7, 100],
    "Boolean": [True, False],
    "Timestamp": ["2025-12-31T00:00:00Z", "2026-01-02T03:04:05Z", "2027-01-01T00:00:00Z"],
}
VARIABLES = {"String": ["$.s", "$.other.s"], "Numeric": ["$.n", "$.f", "$.v"],
             "Boolean": ["$.b", "$.other.b"], "Timestamp": ["$.t", "$.other.t"]}
PATHS = {"String": "$.other.s", "Numeric": "$.other.n", "Boolean": "$.other.b",
         "Timestamp": "$.other.t"}


def choice_machine(rule: dict) -> dict:
    return {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Y"}], "Default": "N"},
        "Y": {"Type": "Pass", "Result": "yes", "End": True},
        "N": {"Type": "Pass", "Result": "no", "End": True}}}


def generated(seed: int = 21) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for op in sorted(choice.OPERATORS):
        kind = next((k for k in VALUES if op.startswith(k)), None)
        if op.startswith("Is"):
            for var in ("$.s", "$.n", "$.b", "$.nul", "$.t", "$.missing", "$.obj"):
                if var == "$.missing" and op != "IsPresent":
                    continue
                out.append(choice_machine({"Variable": var, op: rng.choice([True, False])}))
        elif op == "StringMatches":
            for pat in ("b*", "*ta", "*e*", "x*", "beta", "b\\*ta"):
                out.append(choice_machine({"Variable": "$.s", op: pat}))
        elif op.endswith("Path"):
            for var in VARIABLES[kind]:
                out.append(choice_machine({"Variable": var, op: PATHS[kind]}))
        else:
            for _ in range(3):
                out.append(choice_machine({"Variable": rng.choice(VARIABLES[kind]),
                                           op: rng.choice(VALUES[kind])}))
    for _ in range(15):
        a = {"Variable": "$.n", "NumericGreaterThan": rng.choice([1, 5, 9])}
        b = {"Variable": "$.s", "StringEquals": rng.choice(["beta", "x"])}
        comb = rng.choice(["And", "Or", "Not"])
        out.append(choice_machine({"Not": a} if comb == "Not" else {comb: [a, b]}))
    for text in INTRINSICS:
        out.append(one({"Type": "Pass", "Parameters": {"r.$": text}}))
    # Data flow combinations on Pass and Task states.
    ins = ["$", "$.obj", "$.obj.k"]
    res = ["$", "$.r", "$.obj.new", None]
    outs = ["$", "$.obj"]
    for kind in ("Pass", "Task"):
        for i in ins:
            for r in res:
                o = rng.choice(outs)
                s = {"Type": kind, "InputPath": i, "ResultPath": r, "OutputPath": o}
                if kind == "Task":
                    s["Resource"] = "echo"
                else:
                    s["Parameters"] = {"p.$": "$", "lit": rng.randint(0, 9)}
                out.append(one(s))
    # Retry/Catch matching.
    for err in ("Boom", "Other"):
        for names in (["Boom"], ["States.ALL"], ["States.TaskFailed"], ["Other", "Boom"],
                      ["States.Timeout"]):
            out.append(seq(("A", {"Type": "Task", "Resource": "fail",
                                  "Parameters": {"errorType": err},
                                  "Retry": [{"ErrorEquals": names, "MaxAttempts": 1}],
                                  "Catch": [{"ErrorEquals": names, "Next": "C"}]}),
                           ("C", {"Type": "Pass", "Parameters": {"e.$": "$.Error"}})))
    # Map and Parallel shapes.
    for n in range(1, 6):
        out.append(one({"Type": "Map", "ItemsPath": "$.arr", "MaxConcurrency": n % 3,
                        "ItemProcessor": seq(("P", {"Type": "Pass", "Parameters": {
                            "x.$": "States.MathAdd($, " + str(n) + ")"}}))}))
        out.append(one({"Type": "Parallel", "Branches": [
            branch({"Type": "Pass", "Result": i}, f"B{i}") for i in range(n)]}))
    return out


def corpus() -> list[dict]:
    return HAND + generated()


# Valid/invalid definitions for the validator comparison.
def _arns(value):
    """Task resources as full Lambda ARNs: asl-validator accepts ARNs only (this engine also
    takes bare function names)."""
    if isinstance(value, dict):
        out = {k: _arns(v) for k, v in value.items()}
        res = out.get("Resource")
        if out.get("Type") == "Task" and isinstance(res, str) and not res.startswith("arn:"):
            out["Resource"] = f"arn:aws:lambda:us-east-1:123456789012:function:{res}"
        return out
    if isinstance(value, list):
        return [_arns(v) for v in value]
    return value


def validation_corpus() -> list[dict]:
    good = [_arns(d) for d in corpus()[:40]]
    bad = [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}},
        {"StartAt": "B", "States": {"A": {"Type": "Pass", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Pass"}}},
        {"StartAt": "A", "States": {"A": {"Type": "Nope", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Task", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Wait", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": []}}},
        {"StartAt": "A", "States": {"A": {"Type": "Parallel", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True, "Next": "A"}}},
        {"StartAt": "A", "States": {"A": {"Type": "Fail", "Next": "A"}}},
        {"StartAt": "A", "States": {"A": {"Type": "Succeed", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True, "Bogus": 1}}},
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "f", "End": True,
                                          "Retry": [{"MaxAttempts": 1}]}}},
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "f", "End": True,
                                          "Catch": [{"ErrorEquals": ["X"]}]}}},
        {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [
            {"Variable": "$.a", "StringEquals": "x"}]}}},
        {"States": {"A": {"Type": "Pass", "End": True}}},
        {"StartAt": "A"},
        {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "Timestamp":
                                          "2020-01-01T00:00:00Z", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Map", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [
            {"Variable": "$.a", "NumericEquals": "x", "Next": "A"}]}}},
    ]
    return [(d, True) for d in good] + [(d, False) for d in bad]
