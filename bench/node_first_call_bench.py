"""The first invocation of a pre-initialised Node.js environment, with and without the spare's
warm-up (decision 074), in process (no gRPC, no pool): what a cold start that takes a spare
pays inside the environment.

    .venv/bin/python bench/node_first_call_bench.py [--n 30] [--json FILE]

Each round makes two environments of guests/node/hello the way pool/prestart.py makes a spare
(launch, init with or without `warmup`, freeze), interleaved so that both modes see the same
load, and times `invoke()` from the host (thaw included) for the first call of each, then a
second call of the warmed one (the warm reference). Writes bench/results/node_first_call.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import write_json  # noqa: E402
from runner.environments.backends import default_backends  # noqa: E402
from tests.unit.environments.node._node_helpers import guest, request  # noqa: E402


def timed_invoke(env, name: str) -> float:
    t0 = time.perf_counter()
    out = env.invoke(request({"name": name}))
    elapsed = (time.perf_counter() - t0) * 1e3
    if out.error is not None:
        raise SystemExit(f"invocation failed: {out.error}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="rounds (environments per mode)")
    ap.add_argument("--json", default=None, help="output path (default bench/results/)")
    args = ap.parse_args()
    backend = default_backends(tempfile.mkdtemp(prefix="node-first-call-"))["nodejs"]
    v = guest("hello")
    rows = {"first call, warm-up on": [], "first call, warm-up off": [], "second call": []}
    for _ in range(args.n):
        for warmup in (True, False):
            env = backend.create(v)
            try:
                env.launch()
                env.init_warmup = warmup
                env.start()
                env.freeze()
                key = "first call, warm-up on" if warmup else "first call, warm-up off"
                rows[key].append(timed_invoke(env, "first"))
                if warmup:
                    rows["second call"].append(timed_invoke(env, "second"))
            finally:
                env.destroy()
    load = os.getloadavg()[0]
    print(f"Node.js first invocation of a pre-initialised environment, n={args.n}, load {load:.1f}")
    print(f"{'what':28} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8}")
    result = {"n": args.n, "load": load, "rows": {}}
    for what, xs in rows.items():
        xs = sorted(xs)
        p50, p90 = statistics.median(xs), xs[int(0.9 * (len(xs) - 1))]
        print(f"{what:28} {p50:8.2f} {p90:8.2f} {xs[0]:8.2f}")
        result["rows"][what] = {"p50_ms": p50, "p90_ms": p90, "min_ms": xs[0]}
    on, off = rows["first call, warm-up on"], rows["first call, warm-up off"]
    result["ratio_off_over_on_p50"] = statistics.median(off) / statistics.median(on)
    print(f"warm-up off / on (p50): {result['ratio_off_over_on_p50']:.2f}x")
    print("wrote", write_json("node_first_call.json", result, args.json))


if __name__ == "__main__":
    main()
