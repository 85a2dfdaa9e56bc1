"""The init boost (issue 20): a CPU-bound init phase (a fixed amount of work, as importing a
heavy package is) at 128 MB and at 1,769 MB, with the boost and without it (the function's
own CPU share during init, as before), side by side in one run.

    .venv/bin/python bench/init_boost.py [--work 2000000] [--runs 3]

Prints the table and writes bench/results/init_boost.json. The target: at 128 MB with the
boost, init takes about what it takes at 1,769 MB (ratio to 1,769 MB near 1), where without
it it takes about 1769/128 = 14 times longer. Needs cgroups (without them there is no CPU
share to boost, and the script says so).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import cleanup, scratch, set_mode, version, write_json  # noqa: E402
from runner.confinement import limits  # noqa: E402
from runner.environments.process import launch  # noqa: E402
from runner.environments.process.backend import ProcessBackend  # noqa: E402
from runner.environments.python.runtime import PythonRuntime  # noqa: E402

INIT = """
N = int(__import__("os").environ["WORK"])
total = 0
for i in range(N):
    total += i * i
def handler(event, context):
    return total
"""


def init_ms(backend, v) -> float:
    env = backend.create(v)
    env.start()
    try:
        return float(env.init_duration_ms)
    finally:
        env.destroy()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=int, default=2_000_000, help="loop iterations in the init")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", help="where to write the results")
    args = p.parse_args()
    set_mode(namespaces=True, cgroups=True)
    if limits.cgroup_layout() is None:
        print("no usable cgroups on this host: no CPU share, nothing to boost")
        return 0
    root = scratch()
    rows = []
    try:
        backend = ProcessBackend(PythonRuntime(), root)
        boost = launch.INIT_BOOST_CPUS
        for memory in (128, 1769):
            for label, cpus in (("boost", boost), ("no boost", 0.0)):
                launch.INIT_BOOST_CPUS = cpus
                v = version(root, f"f{memory}{int(cpus)}", INIT, memory_mb=memory,
                            environment={"WORK": str(args.work)})
                times = [init_ms(backend, v) for _ in range(args.runs)]
                rows.append({"memory_mb": memory, "mode": label,
                             "init_ms": statistics.median(times), "runs": times})
        launch.INIT_BOOST_CPUS = boost
    finally:
        cleanup(root)
    base = next(r["init_ms"] for r in rows if r["memory_mb"] == 1769 and r["mode"] == "no boost")
    print(f"{'memory':>7} {'mode':>9} {'init ms':>9} {'vs 1769 MB':>11}")
    for r in rows:
        r["ratio_to_1769"] = r["init_ms"] / base
        print(f"{r['memory_mb']:>7} {r['mode']:>9} {r['init_ms']:>9.1f} {r['ratio_to_1769']:>11.2f}")
    print("written:", write_json("init_boost.json", {"boost_cpus": launch.INIT_BOOST_CPUS,
                                                     "work": args.work, "rows": rows}, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
