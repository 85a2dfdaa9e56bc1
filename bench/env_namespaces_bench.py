"""What per-environment namespaces cost a Python cold start and an idle environment.

    .venv/bin/python bench/env_namespaces_bench.py [--quick] [--json FILE]

Two zygote backends of the same function side by side in one process: `shared` (decision
007's shared sandbox, RUNNER_ENV_NAMESPACES=off, the baseline) and `per-env` (issue 24's own
user/mount/PID/IPC namespaces, /tmp and /dev/shm per environment, decision 068). Measured in
process, without the gRPC edge, samples interleaved so both see the same load:

* fork: `start()` of a new environment from a ready zygote (clone + set-up + handshake);
* cold: `start()` plus its first invocation (the cold start a caller waits for, minus gRPC);
* warm: an invocation of an environment that already served one;
* idle PSS: N environments started and invoked once, then the sum of their PSS / N.

Prints a table and writes bench/results/env_namespaces.json. Target (issue 17 item 10): the
Python cold start p50 stays under 3 ms with per-environment namespaces on.
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
def handler(event, context):
    return {"ok": True}
"""
MODES = {"shared": "off", "per-env": "on"}
TARGET_COLD_P50_MS = 3.0


def _backend(root: str, mode: str):
    os.environ["RUNNER_ENV_NAMESPACES"] = MODES[mode]
    backends = default_backends(os.path.join(root, f"envs-{mode}"))
    os.makedirs(os.path.join(root, f"envs-{mode}"), exist_ok=True)
    v = version(root, f"nsbench-{mode}", SOURCE, memory_mb=1769)
    py = backends["python"]
    py.prewarm(v)  # the zygote now, with the switch as set above (read when it is built)
    z, _ = py.zygote(v)
    want = mode == "per-env"
    if z.env_namespaces != want:
        raise SystemExit(f"{mode}: per-environment namespaces are "
                         f"{'on' if z.env_namespaces else 'off'} here, expected the opposite")
    return backends, py, v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/env_namespaces_bench.py")
    ap.add_argument("--quick", action="store_true", help="fewer samples (CI smoke)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    n_cold, n_warm, n_idle = (20, 50, 20) if args.quick else (100, 300, 100)
    root = scratch()
    setups = {}
    try:
        for mode in MODES:
            setups[mode] = _backend(root, mode)
        warm_envs = {}
        for mode, (_, py, v) in setups.items():
            env = py.create(v)
            env.start()
            env.invoke(request({}))
            warm_envs[mode] = env

        def cold(mode, fork_only=False):
            _, py, v = setups[mode]
            env = py.create(v)
            t0 = time.perf_counter()
            env.start()
            t1 = time.perf_counter()
            out = env.invoke(request({}))
            t2 = time.perf_counter()
            assert out.error is None, out.error
            env.destroy()
            return ((t1 if fork_only else t2) - t0) * 1000.0

        def warm(mode):
            t0 = time.perf_counter()
            out = warm_envs[mode].invoke(request({}))
            assert out.error is None
            return (time.perf_counter() - t0) * 1000.0

        samplers = {}
        for mode in MODES:
            samplers[f"{mode} fork"] = ((lambda m=mode: cold(m, True)), n_cold)
            samplers[f"{mode} cold"] = ((lambda m=mode: cold(m)), n_cold)
            samplers[f"{mode} warm"] = ((lambda m=mode: warm(m)), n_warm)
        samples, errors = measure.interleave(samplers)
        results = {k: measure.summarize(v) for k, v in samples.items() if v}

        idle = {}
        for mode, (_, py, v) in setups.items():
            envs = []
            for _ in range(n_idle):
                env = py.create(v)
                env.start()
                env.invoke(request({}))
                envs.append(env)
            pss = measure.tree_pss_bytes([e.pid for e in envs])
            idle[mode] = {"n": n_idle, "pss_per_env_mb": pss / n_idle / 1e6}
            for env in envs:
                env.destroy()
        for env in warm_envs.values():
            env.destroy()
    finally:
        for backends, _, _ in setups.values():
            for b in backends.values():
                b.close()
        cleanup(root)

    print(f"{'':16} {'p50 ms':>8} {'p99 ms':>8} {'n':>5}")
    for k, r in results.items():
        print(f"{k:16} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['n']:5d}")
    for mode, r in idle.items():
        print(f"{mode + ' idle PSS':16} {r['pss_per_env_mb']:8.2f} MB per environment ({r['n']} envs)")
    cold_p50 = results["per-env cold"]["p50_ms"]
    ratio = cold_p50 / results["shared cold"]["p50_ms"]
    verdict = "PASS" if cold_p50 < TARGET_COLD_P50_MS else "FAIL"
    print(f"per-env cold p50 {cold_p50:.2f} ms (x{ratio:.2f} of shared): target < "
          f"{TARGET_COLD_P50_MS} ms {verdict}")
    over_warm = cold_p50 - results["per-env warm"]["p50_ms"]
    print(f"per-env cold p50 - warm p50: +{over_warm:.2f} ms (issue 24 target <= 0.3 ms, "
          f"in-process; {'PASS' if over_warm <= 0.3 else 'FAIL'})")
    path = write_json("env_namespaces.json", {"latency": results, "idle": idle, "errors": errors,
                                              "cold_ratio": ratio, "verdict": verdict}, args.json)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
