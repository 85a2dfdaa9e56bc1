"""What isolation adds to a cold start: baseline (plain spawn, rlimits) vs cgroups, namespaces
and both, measured in the same run on the same function.

    .venv/bin/python bench/isolation_bench.py [--n 30]

Per environment it times launch (spawn until the guest's hello: where bwrap's namespaces and
mounts cost), start (limits.apply + the init phase: where cgroup creation costs), the first
invoke, and destroy (kill + cgroup removal). Prints a table of medians and p90s, and writes
bench/results/isolation.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import cleanup, request, scratch, set_mode, version, write_json  # noqa: E402
from runner.environments.backends import ProcessBackend  # noqa: E402
from runner.environments.python.runtime import PythonRuntime  # noqa: E402
from runner.environments.python.zygote import ZygoteBackend  # noqa: E402

HELLO = """
def handler(event, context):
    return {"hello": event.get("name", "world")}
"""
MODES = [
    ("baseline (rlimits only)", False, False),
    ("cgroups", False, True),
    ("namespaces (bwrap)", True, False),
    ("namespaces + cgroups", True, True),
]


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.9))]


def measure(backend, v, n: int) -> dict[str, list[float]]:
    out = {"launch": [], "start": [], "invoke": [], "destroy": [], "total": []}
    for _ in range(n):
        env = backend.create(v)
        t0 = time.perf_counter()
        env.launch()
        t1 = time.perf_counter()
        env.start()
        t2 = time.perf_counter()
        res = env.invoke(request({"name": "bench"}))
        t3 = time.perf_counter()
        assert res.error is None, res.error
        env.destroy()
        t4 = time.perf_counter()
        for k, a, b in (("launch", t0, t1), ("start", t1, t2), ("invoke", t2, t3),
                        ("destroy", t3, t4), ("total", t0, t3)):
            out[k].append((b - a) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30, help="environments per mode")
    args = ap.parse_args()
    root = scratch()
    try:
        backend = ProcessBackend(PythonRuntime(), os.path.join(root, "envs"))
        os.makedirs(backend.tmp_root, exist_ok=True)
        v = version(root, "hello", HELLO, memory_mb=1769)  # 1 vCPU: CPU quota does not slow init
        results = {}
        for name, ns, cg in MODES:
            set_mode(ns, cg)
            measure(backend, v, 3)  # warm the page cache and the one-time probes
            results[name] = measure(backend, v, args.n)
        # Environments forked from a per-version zygote (the default Python backend): the
        # zygote is built once (in the warm-up), then each cold start is fork + limits.
        for name, ns, cg in (MODES[0], MODES[3]):
            set_mode(ns, cg)
            zb = ZygoteBackend(PythonRuntime(), os.path.join(root, "envs"))
            zv = version(root, f"hello-z-{int(ns)}{int(cg)}", HELLO, memory_mb=1769)
            try:
                measure(zb, zv, 3)
                results[f"zygote fork: {name}"] = measure(zb, zv, args.n)
            finally:
                zb.close()
        # A second pass of the baseline at the end: its drift bounds the noise of the run.
        set_mode(False, False)
        results["baseline (again)"] = measure(backend, v, args.n)
    finally:
        cleanup(root)
    base = statistics.median(results["baseline (rlimits only)"]["total"])
    hdr = f"{'mode':<42}{'launch':>9}{'start':>9}{'invoke':>9}{'destroy':>9}{'cold total':>12}{'p90':>8}{'added':>8}"
    print(f"cold start of a Python hello function, median ms over {args.n} environments")
    print(hdr)
    print("-" * len(hdr))
    summary = {}
    for name, r in results.items():
        med = {k: statistics.median(v) for k, v in r.items()}
        summary[name] = {"median_ms": med, "p90_total_ms": p90(r["total"]),
                         "added_ms": med["total"] - base, "samples_ms": r}
        print(f"{name:<42}{med['launch']:>9.1f}{med['start']:>9.1f}{med['invoke']:>9.1f}"
              f"{med['destroy']:>9.1f}{med['total']:>12.1f}{p90(r['total']):>8.1f}{med['total'] - base:>+8.1f}")
    path = write_json("isolation.json", {"n": args.n, "cores": os.cpu_count(), "modes": summary})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
