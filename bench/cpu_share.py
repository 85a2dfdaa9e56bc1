"""CPU share proportional to memory, measured: one CPU-bound guest at 128, 512, 1024 and 1769 MB
(one after another, so they do not compete), each spinning for a fixed wall time; its throughput
relative to an unthrottled run of the same guest against the ideal memory_mb / 1769.

    .venv/bin/python bench/cpu_share.py [--seconds 3]

Prints the table, writes bench/results/cpu_share.json, and exits 1 if any ratio is off the
ideal by more than 20%.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import cleanup, request, scratch, set_mode, version, write_json  # noqa: E402
from runner.environments.process.backend import ProcessBackend  # noqa: E402
from runner.environments.python.runtime import PythonRuntime  # noqa: E402
from runner.model import MB_PER_VCPU  # noqa: E402

SPIN = """
import time
def handler(event, context):
    end = time.monotonic() + event["seconds"]
    n = 0
    while time.monotonic() < end:
        for _ in range(1000):
            n += 1
    return {"iterations": n, "seconds": event["seconds"]}
"""
MEMORY = (128, 512, 1024, 1769)
TOLERANCE = 0.20


def run(backend, v, seconds: float) -> float:
    env = backend.create(v)
    env.start()
    try:
        env.invoke(request({"seconds": 0.2}))  # warm: imports, first quota period
        out = env.invoke(request({"seconds": seconds}))
        assert out.error is None, out.error
        import json

        return json.loads(out.payload)["iterations"] / seconds
    finally:
        env.destroy()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    root = scratch()
    rows = []
    try:
        backend = ProcessBackend(PythonRuntime(), os.path.join(root, "envs"))
        os.makedirs(backend.tmp_root, exist_ok=True)
        ref = version(root, "ref", SPIN, memory_mb=1769)
        set_mode(True, False)  # reference: namespaces, no CPU quota = one full core
        refs = [run(backend, ref, args.seconds)]
        set_mode(True, True)
        rates = {mb: run(backend, version(root, f"spin{mb}", SPIN, memory_mb=mb), args.seconds)
                 for mb in MEMORY}
        set_mode(True, False)  # and again at the end: the spread shows the host's drift
        refs.append(run(backend, ref, args.seconds))
        full = max(refs)
        for mb in MEMORY:
            rate = rates[mb]
            ideal = min(mb / MB_PER_VCPU, float(os.cpu_count() or 1))
            ratio = rate / full
            rows.append({"memory_mb": mb, "iterations_per_s": rate, "ratio": ratio,
                         "ideal": ideal, "ratio_over_ideal": ratio / ideal,
                         "within_20pct": abs(ratio / ideal - 1) <= TOLERANCE})
    finally:
        cleanup(root)
    print(f"CPU-bound guest, {args.seconds:.0f} s each; unthrottled reference runs "
          f"{', '.join(f'{r:,.0f}' for r in refs)} it/s (best is one full core)")
    print(f"{'memory MB':>10}{'it/s':>14}{'measured':>10}{'ideal':>8}{'meas/ideal':>12}  ok")
    for r in rows:
        print(f"{r['memory_mb']:>10}{r['iterations_per_s']:>14,.0f}{r['ratio']:>10.3f}"
              f"{r['ideal']:>8.3f}{r['ratio_over_ideal']:>12.3f}  {'yes' if r['within_20pct'] else 'NO'}")
    path = write_json("cpu_share.json", {"seconds": args.seconds, "reference_iterations_per_s": full,
                                         "reference_runs": refs,
                                         "tolerance": TOLERANCE, "rows": rows})
    print(f"\nwrote {path}")
    return 0 if all(r["within_20pct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
