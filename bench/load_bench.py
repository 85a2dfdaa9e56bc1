"""Mixed load on a real `runner serve`: latency of each kind of call, timeouts above all.

    python bench/load_bench.py [--clients 32] [--seconds 60] [--runtimes python,nodejs,wasm]
                               [--quick] [--json FILE]

Same server, same functions, in one run: a baseline of ONE client (no contention: what each
kind of call costs on this host now), then N clients (bench/load.py: 80% succeed, 10% raise,
10% run past their 1 s timeout). The table shows p50/p99/max per runtime and kind for both
and the ratio loaded/baseline at p99; the target line is issue 17's: 1 s timeouts reported
within 1.5 s at p99 under 32 clients, with 0 platform errors. JSON to bench/results/load.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `python bench/load_bench.py` puts bench/ first, not the repository root
    sys.path.insert(0, ROOT)

import grpc  # noqa: E402

from bench._common import write_json  # noqa: E402
from bench.load import TIMEOUT_S, deploy_all, run_load  # noqa: E402


def start_server(data_dir: str, log_path: str) -> tuple[subprocess.Popen, str]:
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "runner", "serve", "--data-dir", data_dir,
                             "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line:
            break
        if m := re.match(r"^listening on (\S+:\d+)", line):
            return proc, m.group(1)
    proc.kill()
    raise SystemExit(f"server did not start; see {log_path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--runtimes", default="python,nodejs,wasm")
    ap.add_argument("--quick", action="store_true", help="8 clients x 5 s (CI smoke)")
    ap.add_argument("--json", help="output path (default bench/results/load.json)")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.seconds = 8, 5.0
    runtimes = tuple(r for r in args.runtimes.split(",") if r != "nodejs" or shutil.which("node"))
    work = tempfile.mkdtemp(prefix="load-bench-")
    proc, address = start_server(os.path.join(work, "data"), os.path.join(work, "server.log"))
    try:
        with grpc.insecure_channel(address) as channel:
            targets = deploy_all(channel, runtimes, concurrency=2 * args.clients)
        run_load(address, targets, 1, 2.0, seed=1)  # warm every function once
        baseline = run_load(address, targets, 1, max(5.0, args.seconds / 4), seed=2).summary()
        loaded = run_load(address, targets, args.clients, args.seconds, seed=3).summary()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    keys = sorted(k for k in loaded if "/" in k)
    print(f"\nmixed load, {args.clients} clients x {args.seconds:.0f} s "
          f"(baseline: 1 client x {baseline['seconds']:.0f} s), runtimes {','.join(runtimes)}")
    print(f"{'call':<18}{'n':>6}{'p50 s':>8}{'p99 s':>8}{'max s':>8}   "
          f"{'base p50':>8}{'base p99':>9}{'p99 ratio':>10}")
    for k in keys:
        lo, ba = loaded[k], baseline.get(k)
        ratio = f"{lo['p99_s'] / ba['p99_s']:.2f}" if ba and ba["p99_s"] else "-"
        base = f"{ba['p50_s']:>8.3f}{ba['p99_s']:>9.3f}" if ba else f"{'-':>8}{'-':>9}"
        print(f"{k:<18}{lo['n']:>6}{lo['p50_s']:>8.3f}{lo['p99_s']:>8.3f}{lo['max_s']:>8.3f}   "
              f"{base}{ratio:>10}")
    print("cold starts under load (n, p50 of the call, p50/max of its Init Duration):")
    for k in keys:
        if loaded[k].get("cold"):
            lo = loaded[k]
            print(f"  {k:<16}{lo['cold']:>6}{lo['cold_p50_s']:>8.3f}{lo['init_p50_s']:>8.3f}"
                  f"{lo['init_max_s']:>8.3f}")
    timeouts = loaded.get("all/timeout", {})
    ok = (loaded["platform_errors"] == 0 and loaded["wrong_outcomes"] == 0
          and timeouts.get("p99_s", 99) < 1.5 * TIMEOUT_S)
    print(f"calls {loaded['calls']}, platform errors {loaded['platform_errors']}, wrong outcomes "
          f"{loaded['wrong_outcomes']}; target (0 errors, 1 s timeouts within 1.5 s at p99): "
          f"{'PASS' if ok else 'FAIL'}")
    if loaded["first_errors"]:
        print("first errors:", *loaded["first_errors"], sep="\n  ")
    path = write_json("load.json", {"baseline": baseline, "loaded": loaded, "target_met": ok,
                                    "runtimes": runtimes}, args.json)
    print(f"wrote {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
