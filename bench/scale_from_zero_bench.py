"""The first Python call after scale-to-zero, beside a warm call, in one run.

    .venv/bin/python bench/scale_from_zero_bench.py [--quick] [--json FILE]

The idle TTL reaps a version's environments; its zygote is kept (the pool never reaps
zygotes: they are per version, built at deploy, and cost one interpreter each). Measured in
process, interleaved, per-environment namespaces on:

* warm: an invocation of an environment that already served one;
* after reap: every environment gone, the zygote alive: fork + set-up + handshake + first
  invocation (what the first call after the TTL pays when no pre-started spare is left);
* zygote reaped: the zygote killed too (what a reaped-zygote design, or a zygote lost to the
  OOM killer, would pay): a new sandbox, interpreter start, init, then the fork as above.

Issue 24's target: a version whose zygote was reaped comes back in < 20 ms. Writes
bench/results/scale_from_zero.json.
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

SOURCE = """
import json
def handler(event, context):
    return {"ok": True}
"""
TARGET_MS = 20.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/scale_from_zero_bench.py")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    n = 10 if args.quick else 40
    root = scratch()
    os.makedirs(os.path.join(root, "envs"), exist_ok=True)
    backends = default_backends(os.path.join(root, "envs"))
    py = backends["python"]
    v = version(root, "zero", SOURCE, memory_mb=1769)
    try:
        py.prewarm(v)
        warm_env = py.create(v)
        warm_env.start()
        warm_env.invoke(request({}))

        def first_call() -> float:
            env = py.create(v)
            t0 = time.perf_counter()
            env.start()
            out = env.invoke(request({}))
            ms = (time.perf_counter() - t0) * 1000.0
            assert out.error is None, out.error
            env.destroy()
            return ms

        def after_zygote_reaped() -> float:
            z, _ = py.zygote(v)
            py.discard(v, z)  # no child of it is alive but warm_env's: closed at once or later
            return first_call()

        def warm() -> float:
            t0 = time.perf_counter()
            out = warm_env.invoke(request({}))
            assert out.error is None
            return (time.perf_counter() - t0) * 1000.0

        samples, errors = measure.interleave({
            "warm": (warm, n * 5), "after reap (zygote kept)": (first_call, n),
            "zygote reaped too": (after_zygote_reaped, n)})
        warm_env.destroy()
    finally:
        for b in backends.values():
            b.close()
        cleanup(root)
    results = {k: measure.summarize(s) for k, s in samples.items() if s}
    print(f"{'':26} {'p50 ms':>8} {'p99 ms':>8} {'n':>4}")
    for k, r in results.items():
        print(f"{k:26} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['n']:4d}")
    kept = results["after reap (zygote kept)"]["p50_ms"]
    reaped = results["zygote reaped too"]["p50_ms"]
    print(f"back from zero, zygote kept: {kept:.1f} ms p50 (target < {TARGET_MS:g} ms "
          f"{'PASS' if kept < TARGET_MS else 'FAIL'}); zygote rebuilt: {reaped:.1f} ms p50 "
          f"({'PASS' if reaped < TARGET_MS else 'FAIL'})")
    print(f"wrote {write_json('scale_from_zero.json', {'latency': results, 'errors': errors}, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
