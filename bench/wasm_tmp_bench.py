"""What capping a wasm guest's /tmp costs (confinement/tmpfs.py, decision 048).

    .venv/bin/python bench/wasm_tmp_bench.py [--quick] [--json PATH]

In one run, side by side, driving WasmBackend directly (no server):
* baseline: /tmp a plain directory (the fallback where mounting is refused);
* capped: /tmp a tmpfs of min(ephemeral_storage_mb, memory_mb) mounted per environment.
For each: an environment's start (where the mount happens) + first invocation, its destroy
(where the umount happens), and a warm invocation that writes 64 KiB to /tmp. The ratio
capped/baseline is the price of the cap. Needs root (CAP_SYS_ADMIN) for the capped side.
JSON to bench/results/wasm_tmp.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import cleanup, write_json  # noqa: E402
from runner.confinement import tmpfs  # noqa: E402
from tests.security.test_wasm_hostile import DISK_FILLER  # noqa: E402
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend  # noqa: E402

# Writes 64 KiB to /tmp/fill once (the filler module stopped after one block: a 64 KiB cap
# would be too small, so the write is bounded by the loop's first iteration instead).
WRITE_ONCE = DISK_FILLER.replace("(i64.const 1073741824)", "(i64.const 65536)")


def measure(work: str, n: int) -> dict:
    os.makedirs(work)
    backend = new_backend(pathlib.Path(work))
    version = deploy(pathlib.Path(work), WRITE_ONCE, ephemeral_storage_mb=10)
    backend.prepare(version)
    start, destroy, warm = [], [], []
    for _ in range(n):
        env = backend.create(version)
        t0 = time.perf_counter()
        env.start()
        out = invoke(env)
        start.append(time.perf_counter() - t0)
        assert out.error is None, out.error
        t0 = time.perf_counter()
        invoke(env)
        warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        env.destroy()
        destroy.append(time.perf_counter() - t0)
    backend.close()

    def ms(xs):
        return {"p50_ms": round(statistics.median(xs) * 1000, 3),
                "p99_ms": round(sorted(xs)[int(0.99 * (len(xs) - 1))] * 1000, 3)}

    return {"start_and_first_invoke": ms(start), "warm_invoke_writing_64k": ms(warm),
            "destroy": ms(destroy)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    n = 50 if args.quick else 300
    work = tempfile.mkdtemp(prefix="wasm-tmp-bench-")
    try:
        # Baseline: the fallback path, as on a host that refuses mount(2).
        tmpfs._refused = "benchmark baseline"  # noqa: SLF001 - the module's own off switch
        base = measure(os.path.join(work, "base"), n)
        tmpfs._refused = None
        capped = measure(os.path.join(work, "capped"), n)
        mounted = tmpfs.refused() is None
    finally:
        cleanup(work)
    print(f"\nwasm /tmp: plain directory (baseline) vs capped tmpfs, {n} environments"
          + ("" if mounted else "  [mount refused here: both sides are the baseline]"))
    print(f"{'':<26}{'base p50':>10}{'capped p50':>12}{'ratio':>8}{'base p99':>10}{'capped p99':>12}")
    for key in base:
        b, c = base[key], capped[key]
        print(f"{key:<26}{b['p50_ms']:>10.3f}{c['p50_ms']:>12.3f}"
              f"{c['p50_ms'] / b['p50_ms']:>8.2f}{b['p99_ms']:>10.3f}{c['p99_ms']:>12.3f}")
    path = write_json("wasm_tmp.json", {"baseline": base, "capped": capped, "mounted": mounted,
                                        "environments": n}, args.json)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
