"""Workflow engine overhead: a 5-state Express chain of warm Python functions, side by side
with the same five invocations made directly, in one run (issue 21's target: < 1 ms of engine
time per state over the functions' own time).

    .venv/bin/python bench/workflow_bench.py [--n 300] [--json bench/results/workflows.json]

Rows (milliseconds per chain; samples interleaved so both see the same machine load):
  direct        5 x Runner.invoke of a warm echo function, one after another
  express       StartSyncExecution of an Express machine of 5 Task states on the same function
  pass-only     an Express machine of 5 Pass states: the engine alone, no invocation
  standard      a Standard (durable: SQLite, fsync per transition) machine of the same 5 tasks,
                started and waited for; informational (no target)
Per-state overhead = (express - direct) / 5, from the medians. Benchmarks measure; the tests
never assert timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from runner import Runner  # noqa: E402
from runner.workflows.engine import WorkflowEngine  # noqa: E402

STATES = 5
TARGET_MS = 1.0
ECHO = os.path.join(ROOT, "guests", "python", "echo")


def chain(kind: str) -> str:
    states = {}
    for i in range(STATES):
        s = {"Type": "Task", "Resource": "echo"} if kind == "task" else {"Type": "Pass"}
        s.update({"Next": f"S{i + 1}"} if i + 1 < STATES else {"End": True})
        states[f"S{i}"] = s
    return json.dumps({"StartAt": "S0", "States": states})


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _summary(xs: list[float]) -> dict:
    s = sorted(xs)
    return {"n": len(s), "p50": _median(s), "p95": s[int(0.95 * (len(s) - 1))],
            "mean": statistics.fmean(s)}


def run(n: int = 300, standard_n: int = 20) -> dict:
    data = tempfile.mkdtemp(prefix="wf-bench-")
    with Runner(data, idle_ttl_s=600) as runner:
        runner.deploy("echo", ECHO, runtime="python", handler="app.handler", memory_mb=1769)
        engine = WorkflowEngine(runner.data_dir, runner.invoke)
        try:
            task = engine.create_machine("tasks", chain("task"), "EXPRESS").arn
            passes = engine.create_machine("passes", chain("pass"), "EXPRESS").arn
            durable = engine.create_machine("durable", chain("task"), "STANDARD").arn
            payload = b'{"k": 1}'

            def direct():
                for _ in range(STATES):
                    r = runner.invoke("echo", payload)
                    assert r.function_error is None, r.payload

            def express():
                ex = engine.start_execution(task, input='{"k": 1}', sync=True)
                assert ex.status == "SUCCEEDED", ex

            def pass_only():
                engine.start_execution(passes, input='{"k": 1}', sync=True)

            def standard():
                ex = engine.wait(engine.start_execution(durable, input='{"k": 1}').arn, 60)
                assert ex.status == "SUCCEEDED", ex

            for fn in (direct, express, pass_only, standard):  # warm everything up
                fn()
            samples: dict[str, list[float]] = {"direct": [], "express": [], "pass-only": []}
            for _ in range(n):
                for name, fn in (("direct", direct), ("express", express), ("pass-only", pass_only)):
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append((time.perf_counter() - t0) * 1000)
            samples["standard"] = []
            for _ in range(standard_n):
                t0 = time.perf_counter()
                standard()
                samples["standard"].append((time.perf_counter() - t0) * 1000)
        finally:
            engine.close()
    rows = {k: _summary(v) for k, v in samples.items()}
    per_state = (rows["express"]["p50"] - rows["direct"]["p50"]) / STATES
    return {
        "rows": rows,
        "states": STATES,
        "engine_ms_per_state": per_state,
        "pass_only_ms_per_state": rows["pass-only"]["p50"] / STATES,
        "standard_ms_per_state": (rows["standard"]["p50"] - rows["direct"]["p50"]) / STATES,
        "ratio_express_to_direct": rows["express"]["p50"] / rows["direct"]["p50"],
        "target_ms_per_state": TARGET_MS,
        "meets_target": per_state < TARGET_MS,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def table(res: dict) -> str:
    lines = [f"{'row':<12} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}"]
    for name, r in res["rows"].items():
        lines.append(f"{name:<12} {r['n']:>5} {r['p50']:>9.3f} {r['p95']:>9.3f} {r['mean']:>9.3f}")
    lines.append(f"engine time per state (express - direct) / {res['states']}: "
                 f"{res['engine_ms_per_state']:.3f} ms (target < {res['target_ms_per_state']} ms: "
                 f"{'PASS' if res['meets_target'] else 'FAIL'}); express/direct = "
                 f"{res['ratio_express_to_direct']:.2f}")
    lines.append(f"pass-only per state {res['pass_only_ms_per_state']:.3f} ms; standard (durable) "
                 f"per state {res['standard_ms_per_state']:.3f} ms; loadavg {res['loadavg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "workflows.json"))
    args = p.parse_args(argv)
    res = run(args.n)
    print(table(res))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
