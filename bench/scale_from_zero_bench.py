"""The first Python call after scale-to-zero, beside a warm call, in one run.

    .venv/bin/python bench/scale_from_zero_bench.py [--quick] [--json FILE]

The pool's reaper takes a version's idle environments after the idle TTL, and its zygote once
it has no environment left and no cold start for the zygote TTL (decision 086; by default the
idle TTL). Measured in process, interleaved, through two `PoolManager`s whose reaper threads
do the reaping (idle TTL 0.3 s, no pre-started spares: the case where none is left):

* warm: an invocation of an environment that already served one;
* after reap (zygote kept): the idle TTL took every environment, the zygote stayed (a pool
  whose zygote TTL is an hour): fork + set-up + handshake + first invocation;
* zygote reaped: the idle TTL took every environment and then the zygote (a pool with the
  default zygote TTL, the idle TTL): a new sandbox, interpreter start, init, then the fork as
  above. Its Init Duration (what the report of that call says) is printed too.

Also printed: the PSS of one zygote process tree with no children (bwrap and the interpreter,
psutil memory_full_info), what a reap gives back per version. Issue 24's target: a version
whose zygote was reaped comes back in < 20 ms. Writes bench/results/scale_from_zero.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import measure  # noqa: E402
from bench._common import cleanup, request, scratch, version, write_json  # noqa: E402
from runner.environments.backends import default_backends  # noqa: E402
from runner.pool.pool import PoolManager  # noqa: E402

SOURCE = """
import json
def handler(event, context):
    return {"ok": True}
"""
TARGET_MS = 20.0
TTL_S = 0.3  # the idle TTL of both pools: short, so that a sample waits little for its reap
SETTLE_S = 60.0  # a reap that has not happened by then is a failure of the bench


def _wait(what: str, done) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reaped within {SETTLE_S:g} s: {what}")
        time.sleep(0.01)


def tree_pss_bytes(pid: int) -> int:
    """PSS of `pid` and its descendants (shared pages split among their sharers)."""
    root = psutil.Process(pid)
    return sum(p.memory_full_info().pss for p in [root, *root.children(recursive=True)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/scale_from_zero_bench.py")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    n = 10 if args.quick else 40
    root = scratch()
    kept = PoolManager(default_backends(os.path.join(root, "envs-kept")), idle_ttl_s=TTL_S,
                       zygote_ttl_s=3600.0, prestart=False)
    reaping = PoolManager(default_backends(os.path.join(root, "envs-reaped")), idle_ttl_s=TTL_S,
                          prestart=False)  # zygote TTL: the default, the idle TTL
    for pool in (kept, reaping):
        os.makedirs(pool.backends["python"].tmp_root, exist_ok=True)
    vk = version(root, "zero-kept", SOURCE, memory_mb=1769)
    vr = version(root, "zero-reaped", SOURCE, memory_mb=1769)
    vw = version(root, "zero-warm", SOURCE, memory_mb=1769)
    init_ms: dict[str, list[float]] = {"after reap (zygote kept)": [], "zygote reaped": []}
    pss = 0
    try:
        kept.prewarm(vk)
        reaping.prewarm(vr)
        warm_lease = kept.acquire(vw)  # held (busy) to the end: never reaped
        warm_lease.env.invoke(request({}))
        py_kept = kept.backends["python"]

        def first_call(pool: PoolManager, v, name: str) -> float:
            t0 = time.perf_counter()
            lease = pool.acquire(v)
            out = lease.env.invoke(request({}))
            ms = (time.perf_counter() - t0) * 1000.0
            assert lease.cold and out.error is None, out.error
            init_ms[name].append(lease.env.init_duration_ms or 0.0)
            pool.release(lease, reusable=True)  # the idle TTL takes it
            return ms

        def after_reap_zygote_kept() -> float:
            def settled() -> bool:
                if kept.idle_environments(vk):
                    return False
                zygote, _ = py_kept.zygote(vk)  # kept: the zygote TTL is an hour
                return zygote.live_children() == 0  # its last child's exit reported
            _wait("the kept pool's environment", settled)
            return first_call(kept, vk, "after reap (zygote kept)")

        reaps = [0]

        def zygote_reaped() -> float:
            reaps[0] += 1  # the previous sample's zygote (the first: the one built at deploy)
            _wait("the zygote", lambda: reaping.stats()["snapshots_reaped"] >= reaps[0])
            return first_call(reaping, vr, "zygote reaped")

        def warm() -> float:
            t0 = time.perf_counter()
            out = warm_lease.env.invoke(request({}))
            assert out.error is None
            return (time.perf_counter() - t0) * 1000.0

        samples, errors = measure.interleave({
            "warm": (warm, n * 5), "after reap (zygote kept)": (after_reap_zygote_kept, n),
            "zygote reaped": (zygote_reaped, n)})
        _wait("the kept pool's environment", lambda: not kept.idle_environments(vk))
        zygote, _ = py_kept.zygote(vk)
        _wait("the kept zygote's children", lambda: zygote.live_children() == 0)
        pss = tree_pss_bytes(zygote.proc.pid)
        kept.release(warm_lease, reusable=False)
    finally:
        kept.close()
        reaping.close()
        cleanup(root)
    results = {k: measure.summarize(s) for k, s in samples.items() if s}
    print(f"{'':26} {'p50 ms':>8} {'p99 ms':>8} {'n':>4} {'Init Duration p50 ms':>21}")
    for k, r in results.items():
        init = f"{statistics.median(init_ms[k]):21.2f}" if init_ms.get(k) else f"{'':>21}"
        print(f"{k:26} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['n']:4d} {init}")
    if errors:
        print(f"errors: {errors}")
    print(f"one zygote with no child (bwrap + interpreter + init): {pss / 2**20:.1f} MB PSS")
    kept_p50 = results["after reap (zygote kept)"]["p50_ms"]
    reaped_p50 = results["zygote reaped"]["p50_ms"]
    print(f"back from zero, zygote kept: {kept_p50:.1f} ms p50 (target < {TARGET_MS:g} ms "
          f"{'PASS' if kept_p50 < TARGET_MS else 'FAIL'}); zygote reaped: {reaped_p50:.1f} ms "
          f"p50 ({'PASS' if reaped_p50 < TARGET_MS else 'FAIL'})")
    out = {"latency": results, "errors": errors, "zygote_pss_bytes": pss,
           "init_duration_p50_ms": {k: statistics.median(v) for k, v in init_ms.items() if v}}
    print(f"wrote {write_json('scale_from_zero.json', out, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
