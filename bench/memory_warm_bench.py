"""Warm calls at Lambda's default memory (128 MB) beside the suite's 1769 MB (issue 24, "Also").

    .venv/bin/python bench/memory_warm_bench.py [--n 2000] [--rounds 3] [--runtimes python,nodejs,wasm]
                                                [--json FILE]

The suite deploys its fixtures at 1769 MB (one full vCPU) so that the CPU quota does not shape
what it measures; users start at 128 MB, whose share is 128/1769 = 7.2 % of a CPU: the cgroup
gives the environment 1.45 ms of CPU per 20 ms period (decision 008; wasm: 1 ms per 13.8 ms,
decision 024), and a call that finds the period's quota used up waits for the next period.
This bench invokes one warm environment of each size back to back, in process (no gRPC edge:
what is measured is the environment and its quota), in blocks of 100 calls alternated between
the sizes, and prints p50 / p99 / max and the share of calls slower than 10 ms (a stall: no
warm call of the echo takes that long unthrottled). Writes bench/results/memory_warm.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import measure, workloads  # noqa: E402
from bench._common import write_json  # noqa: E402

SIZES_MB = (128, 1769)
BLOCK = 100
STALL_MS = 10.0


def _stats(ms: list[float]) -> dict:
    s = sorted(ms)
    return {"p50_ms": measure.percentile(s, 50), "p99_ms": measure.percentile(s, 99),
            "max_ms": s[-1], "stalls": sum(1 for x in s if x > STALL_MS) / len(s), "n": len(s)}


def measure_runtime(runtime: str, n: int, rounds: int) -> dict:
    from runner import Runner

    data = tempfile.mkdtemp(prefix=f"memory-warm-{runtime}-")
    runner = Runner(data, idle_ttl_s=600)
    try:
        code, handler = workloads.fixture_code(runtime)
        names = {}
        for mb in SIZES_MB:
            names[mb] = f"warm-{runtime}-{mb}"
            runner.deploy(names[mb], code, runtime=runtime, handler=handler, memory_mb=mb)
            for _ in range(20):  # the cold start and the first calls' page faults, unmeasured
                runner.invoke(names[mb], b'{"a": 1}')
        samples: dict[int, list[float]] = {mb: [] for mb in SIZES_MB}
        for _ in range(rounds):
            for start in range(0, n, BLOCK):
                for mb in SIZES_MB:  # alternated blocks: both sizes see the same host load
                    for _ in range(min(BLOCK, n - start)):
                        t0 = time.perf_counter()
                        result = runner.invoke(names[mb], b'{"a": 1}')
                        samples[mb].append((time.perf_counter() - t0) * 1000.0)
                        if result.report.cold_start:
                            raise RuntimeError(f"{runtime} {mb} MB: a warm call started an "
                                               "environment (the idle TTL is 600 s)")
        return {str(mb): _stats(samples[mb]) for mb in SIZES_MB}
    finally:
        runner.close()
        shutil.rmtree(data, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/memory_warm_bench.py")
    ap.add_argument("--n", type=int, default=2000, help="timed calls per size and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runtimes", default="python,nodejs,wasm")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results: dict = {"n": args.n, "rounds": args.rounds, "load_before": os.getloadavg()[0]}
    available = workloads.registered_runtimes()
    print(f"warm calls in process, back to back, {args.rounds} x {args.n} per size, "
          f"blocks of {BLOCK} alternated (load {results['load_before']:.1f} before)")
    print(f"{'runtime':8} {'memory':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'> 10 ms':>8}")
    for rt in [r.strip() for r in args.runtimes.split(",") if r.strip()]:
        if rt not in available:
            results[rt] = {"unavailable": "runtime not registered here"}
            print(f"{rt:8} unavailable here")
            continue
        results[rt] = measure_runtime(rt, args.n, args.rounds)
        for mb in SIZES_MB:
            r = results[rt][str(mb)]
            print(f"{rt:8} {mb:>4} MB {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.1f} "
                  f"{r['stalls'] * 100:7.1f}%")
    results["load_after"] = os.getloadavg()[0]
    print(f"wrote {write_json('memory_warm.json', results, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
