"""Throughput at low concurrency before and after a burst, per RPC thread pool.

    .venv/bin/python bench/burst_bench.py [--quick] [--rounds N] [--json FILE]

A server's RPC pool grows to as many threads as a burst has calls in flight. This measures
what that leaves behind: for the bare gRPC echo and the runner (Python fixture), each on a
fresh server, inv/s with 2 clients, then 8 clients (the burst), then `--idle` seconds of
nothing, then 2 clients again. Side by side in the same run: the pool the runner ships with
(`renewing`, runner/service/grpc/executor.py) and the baseline, a bare ThreadPoolExecutor
(`plain`, what it used before docs/decisions/041). Servers alternate round by round; the
table shows medians over rounds, and `after / before` is the 2-client inv/s after the burst
over the 2-client inv/s before it (1.00: the burst left nothing behind). Writes
bench/results/burst.json unless --json says otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import measure, workloads  # noqa: E402
from bench._common import write_json  # noqa: E402
from bench.servers import ServerProcess  # noqa: E402
from runner.service.proto import runner_api_pb2 as pb  # noqa: E402
from runner.service.proto import runner_api_pb2_grpc as pb_grpc  # noqa: E402

LOW, BURST = 2, 8  # clients before/after, and during the burst
POOLS = ("plain", "renewing")


def one_round(kind: str, pool: str, window_s: float, idle_s: float) -> dict:
    """before / burst / after inv/s of one fresh server."""
    data = tempfile.mkdtemp(prefix="burst-") if kind == "runner" else None
    try:
        with ServerProcess(kind, data, pool=pool) as srv:
            measure.wait_ready(srv.address)
            name = "echo"
            if kind == "runner":
                code, handler = workloads.fixture_code("python")
                ch = measure.channel(srv.address)
                try:
                    pb_grpc.FunctionsStub(ch).Deploy(pb.DeployRequest(
                        name="burst", code=code, config=workloads.fixture_config("python", handler)))
                finally:
                    ch.close()
                name = "burst"
            before = measure.closed_loop(srv.address, name, LOW, window_s).rps
            burst = measure.closed_loop(srv.address, name, BURST, window_s).rps
            time.sleep(idle_s)
            after = measure.closed_loop(srv.address, name, LOW, window_s).rps
    finally:
        if data:
            shutil.rmtree(data, ignore_errors=True)
    return {"before_rps": before, "burst_rps": burst, "after_rps": after,
            "after_over_before": after / before}


def run(rounds: int, window_s: float, idle_s: float) -> dict:
    kinds = ["echo"] + (["runner"] if "python" in workloads.registered_runtimes() else [])
    per: dict[str, dict[str, list[dict]]] = {k: {p: [] for p in POOLS} for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            for pool in POOLS:
                per[kind][pool].append(one_round(kind, pool, window_s, idle_s))
    keys = ("before_rps", "burst_rps", "after_rps", "after_over_before")
    return {kind: {pool: {k: statistics.median(r[k] for r in rs) for k in keys} | {"rounds": rs}
                   for pool, rs in pools.items()}
            for kind, pools in per.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="burst_bench.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 s windows, 2 rounds (about a minute)")
    ap.add_argument("--rounds", type=int, help="rounds per server kind and pool (default 3, quick 2)")
    ap.add_argument("--window", type=float, help="seconds per load window (default 2, quick 1)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds between burst and after")
    ap.add_argument("--json", help="output file (default bench/results/burst.json)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)
    window = args.window or (1.0 if args.quick else 2.0)
    load = os.getloadavg()[0]
    results = run(rounds, window, args.idle)
    print(f"{BURST}-client burst between two {LOW}-client windows, {args.idle:g} s idle after it; "
          f"medians of {rounds} rounds of {window:g} s (load average {load:.1f} before)")
    print(f"{'server':8s} {'RPC pool':22s} {'before':>8s} {'burst':>8s} {'after':>8s}  after / before")
    labels = {"plain": "ThreadPoolExecutor", "renewing": "renewing (ours)"}
    for kind, pools in results.items():
        for pool, r in pools.items():
            print(f"{kind:8s} {labels[pool]:22s} {r['before_rps']:8.0f} {r['burst_rps']:8.0f} "
                  f"{r['after_rps']:8.0f}  {r['after_over_before']:.2f}")
    out = {"meta": {"rounds": rounds, "window_s": window, "idle_s": args.idle,
                    "low_clients": LOW, "burst_clients": BURST, "loadavg_before": load},
           "servers": results}
    print("JSON:", write_json("burst.json", out, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
