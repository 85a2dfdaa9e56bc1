"""How many idle Python environments fit in 4 GiB, and how the figure grows with their number.

    .venv/bin/python bench/density_bench.py [--quick] [--levels 100,500,1000] [--json FILE]

For each level N, with per-environment namespaces on (decision 068) and, in the same run, off
(the shared zygote sandbox of decision 007, the baseline): N environments of one version are
forked from its zygote, each invoked once and then frozen (the idle freezer of decision 047,
as the pool does 0.1 s after an invocation), and their PSS is summed (smaps_rollup: shared
pages are split among their sharers, so the zygote's image is counted once overall). Printed
per level: PSS per environment, the zygote's own PSS, how many such environments fit in
4 GiB, and the marginal cost of the environments added since the previous level (is it
linear). Issue 24's target: >= 4,000 idle Python environments in 4 GiB. Writes
bench/results/density.json.

Each level is built and torn down before the next; the version is deployed with concurrency
N so that the zygote's memory limit allows N live children (zygote_process.zygote_memory_limit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import measure  # noqa: E402
from bench._common import cleanup, request, scratch, version, write_json  # noqa: E402
from runner.environments.backends import default_backends  # noqa: E402
from runner.environments.python.zygote_process import _innermost  # noqa: E402

SOURCE = """
import json
def handler(event, context):
    return {"ok": True}
"""
GIB4 = 4 * 1024 ** 3
MODES = {"per-env": "on", "shared": "off"}


def level(root: str, mode: str, n: int) -> dict:
    os.environ["RUNNER_ENV_NAMESPACES"] = MODES[mode]
    backends = default_backends(os.path.join(root, f"envs-{mode}-{n}"))
    os.makedirs(os.path.join(root, f"envs-{mode}-{n}"), exist_ok=True)
    py = backends["python"]
    v = version(root, f"density-{mode}-{n}", SOURCE, memory_mb=128, concurrency=n)
    envs = []
    t0 = time.perf_counter()
    try:
        py.prewarm(v)
        zygote, _ = py.zygote(v)
        assert zygote.env_namespaces == (mode == "per-env"), "switch not honoured"
        for _ in range(n):
            env = py.create(v)
            envs.append(env)
            env.start()
            out = env.invoke(request({}))
            assert out.error is None, out.error
            env.freeze()
        built_s = time.perf_counter() - t0
        time.sleep(0.5)  # let the freezes settle
        pss = measure.tree_pss_bytes([e.pid for e in envs])
        zpss = measure.tree_pss_bytes([_innermost(zygote.proc.pid).pid])
        return {"n": n, "pss_total_mb": pss / 1e6, "pss_per_env_mb": pss / n / 1e6,
                "zygote_pss_mb": zpss / 1e6, "fit_in_4gib": int(GIB4 / (pss / n)),
                "build_s": round(built_s, 1)}
    finally:
        for env in envs:
            env.destroy()
        for b in backends.values():
            b.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/density_bench.py")
    ap.add_argument("--quick", action="store_true", help="levels 50,100")
    ap.add_argument("--levels", default="100,500,1000")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    levels = [50, 100] if args.quick else [int(x) for x in args.levels.split(",")]
    root = scratch()
    results: dict = {m: [] for m in MODES}
    try:
        for n in levels:
            for mode in MODES:  # alternate, so both modes see the same stretch of load
                results[mode].append(level(root, mode, n))
    finally:
        cleanup(root)
    print(f"{'mode':8} {'N':>5} {'PSS/env MB':>11} {'zygote MB':>10} {'fit 4 GiB':>10} "
          f"{'marginal MB/env':>16} {'build s':>8}")
    for mode, rows in results.items():
        prev = None
        for r in rows:
            marginal = "" if prev is None else \
                f"{(r['pss_total_mb'] - prev['pss_total_mb']) / (r['n'] - prev['n']):.2f}"
            r["marginal_mb_per_env"] = float(marginal) if marginal else None
            print(f"{mode:8} {r['n']:5d} {r['pss_per_env_mb']:11.2f} {r['zygote_pss_mb']:10.2f} "
                  f"{r['fit_in_4gib']:10d} {marginal:>16} {r['build_s']:8.1f}")
            prev = r
    best = max(r["fit_in_4gib"] for r in results["per-env"])
    print(f"idle Python environments in 4 GiB (per-env namespaces, freezer on): {best} "
          f"(issue 24 target >= 4000: {'PASS' if best >= 4000 else 'FAIL'})")
    print(f"wrote {write_json('density.json', results, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
