"""Differential tests: the engine against aws-local-stepfunctions (an ASL interpreter nobody
here wrote) on the same state machines with the same local Task handlers, and the engine's
validator against asl-validator. Same status; same output when both succeed; same error name
when both fail (causes are free text). The references are npm packages that `make setup`
installs into tests/differential/node_modules (package.json, package-lock.json).

Divergences where the reference departs from the AWS documentation are listed in KNOWN with
the documentation's answer (docs/workflows.md repeats them); the engine follows AWS there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from runner.workflows import asl, interpreter
from runner.workflows.engine import WorkflowEngine
from tests.differential import cases
from tests.differential.handlers import invoke

HERE = os.path.dirname(os.path.abspath(__file__))



def _has(machine: dict, pred) -> bool:
    for s in machine["States"].values():
        if pred(s) or any(_has(b, pred) for b in s.get("Branches", [])) or (
                "ItemProcessor" in s and _has(s["ItemProcessor"], pred)):
            return True
    return False


def _text(d: dict) -> str:
    return json.dumps(d)


# Where aws-local-stepfunctions departs from the AWS documentation, the engine follows AWS.
# Each entry: (what differs and AWS's answer, does it explain this case?). docs/workflows.md
# lists the same.
KNOWN = [
    ("Failed intrinsic functions: the reference names the error States.Runtime; AWS names it "
     "States.IntrinsicFailure",
     lambda d, ours, ref: ours.get("error") == "States.IntrinsicFailure"
     and ref.get("error") in ("States.Runtime", "Error")),
    ("ResultPath \"$\": the reference writes a key named \"$\"; AWS replaces the whole input "
     "with the result",
     lambda d, ours, ref: _has(d, lambda s: s.get("ResultPath") == "$")),
    ("IsNull/IsString/IsNumeric/IsBoolean/IsTimestamp false: the reference never matches; AWS "
     "matches values that are not of the type",
     lambda d, ours, ref: _has(d, lambda s: any(
         r.get(k) is False for r in s.get("Choices", []) for k in r if k.startswith("Is")))),
    ("$$.State: the reference's context object has no State; AWS's has State.Name, "
     "State.EnteredTime and State.RetryCount",
     lambda d, ours, ref: "$$.State." in _text(d)),
    ("A Lambda function's failure: the reference's Cause is the message; AWS's Cause is the "
     "function's error document (errorMessage, errorType, stackTrace) as JSON",
     lambda d, ours, ref: ours.get("status") == "SUCCEEDED" and '"Resource": "fail"' in _text(d)
     and "errorMessage" in json.dumps(ours.get("output"))),
    ("A Pass state's Result of 0 (a falsy value): the reference ignores it and passes the input "
     "on; AWS outputs the Result",
     lambda d, ours, ref: _has(d, lambda s: "Result" in s and s["Result"] in (0, False, "", None))),
    ("States.ArrayGetItem past the end: the reference returns null; AWS fails the state "
     "(States.IntrinsicFailure)",
     lambda d, ours, ref: "ArrayGetItem($.arr, 10)" in _text(d)),
    ("States.StringSplit with several delimiter characters: the reference splits on the whole "
     "string; AWS splits on each character (its documentation's example '.+,=')",
     lambda d, ours, ref: "StringSplit('a.b+c'" in _text(d)),
]


def reference(run=(), validate=()):
    if shutil.which("node") is None:
        pytest.fail("node is not installed: run `make setup` (scripts/setup-system.sh)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "aws-local-stepfunctions")):
        pytest.fail("the npm references are missing: run `make setup` "
                    "(npm ci in tests/differential)")
    req = json.dumps({"run": list(run), "validate": list(validate)})
    proc = subprocess.run(["node", os.path.join(HERE, "reference.cjs")], input=req,
                          capture_output=True, text=True, timeout=300, cwd=HERE)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = WorkflowEngine(str(tmp_path_factory.mktemp("wf")), invoke)
    yield e
    e.close()


def ours(engine, i: int, definition: dict, value) -> dict:
    m = engine.create_machine(f"d{i}", json.dumps(definition), "EXPRESS")
    ex = engine.start_execution(m.arn, input=json.dumps(value), sync=True)
    if ex.status == "SUCCEEDED":
        return {"status": "SUCCEEDED", "output": json.loads(ex.output)}
    return {"status": ex.status, "error": ex.error}


def key(result: dict) -> tuple:
    if result["status"] == "SUCCEEDED":
        return ("SUCCEEDED", json.dumps(result["output"], sort_keys=True))
    return (result["status"], result.get("error"))


def test_corpus_is_large_and_covers_every_state_type():
    corpus = cases.corpus()
    assert len(corpus) >= 200
    types = {s["Type"] for d in corpus for s in _states(d)}
    assert types == {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}


def _states(machine):
    for s in machine["States"].values():
        yield s
        for b in s.get("Branches", []):
            yield from _states(b)
        if "ItemProcessor" in s:
            yield from _states(s["ItemProcessor"])


def test_same_results_as_aws_local_stepfunctions(engine, monkeypatch):
    monkeypatch.setattr(interpreter, "retry_delay", lambda r, n: 0)  # the reference's override
    corpus = cases.corpus()
    theirs = reference(run=[{"definition": d, "input": cases.INPUT} for d in corpus])["run"]
    mismatches, explained = [], {}
    for i, (d, ref) in enumerate(zip(corpus, theirs)):
        # Waits in the corpus are 0 s or in the past, as the reference's override makes them.
        mine = ours(engine, i, d, cases.INPUT)
        if key(mine) == key(ref):
            continue
        why = next((w for w, pred in KNOWN if pred(d, mine, ref)), None)
        if why is not None:
            explained[why] = explained.get(why, 0) + 1
            continue
        mismatches.append(f"#{i} {json.dumps(d)[:300]}\n   ours: {mine}\n   ref:  {ref}")
    assert not mismatches, f"{len(mismatches)} divergences:\n" + "\n".join(mismatches)
    # The corpus still compares at least 200 machines with identical results.
    assert len(corpus) - sum(explained.values()) >= 200, explained


def test_same_verdicts_as_asl_validator():
    corpus = cases.validation_corpus()
    verdicts = reference(validate=[d for d, _ in corpus])["validate"]
    wrong = []
    for (d, expected), theirs in zip(corpus, verdicts):
        try:
            asl.validate(json.dumps(d))
            mine = True
        except Exception:
            mine = False
        if not (mine == theirs == expected):
            wrong.append(f"{json.dumps(d)[:200]}: ours {mine}, asl-validator {theirs}, "
                         f"expected {expected}")
    assert not wrong, "\n".join(wrong)
