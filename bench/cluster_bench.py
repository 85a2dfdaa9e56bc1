"""Every core used: peak throughput of `runner serve --workers N` against `--workers 1`, and
against a bare gRPC echo run as N processes sharing the port the same way (SO_REUSEPORT), in
the same run with the same client. Also warm p50 of one node on PostgreSQL against today's
embedded (SQLite) server, to show that the shared state costs the warm path nothing.

    python bench/cluster_bench.py [--quick] [--runtimes python,nodejs,wasm] [--workers 2]
                                  [--json FILE]

Load: `clients` closed-loop gRPC clients, each with its own channel (so the kernel spreads the
connections over the processes), calling F functions round-robin (several functions, as a
cluster serves: each has a home node). Prints a table and writes JSON (bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.measure import PAYLOAD, channel, percentile  # noqa: E402
from bench.workloads import fixture_code, fixture_config  # noqa: E402
from runner.service.proto import runner_api_pb2 as pb  # noqa: E402
from runner.service.proto import runner_api_pb2_grpc as pb_grpc  # noqa: E402

DEFAULT_JSON = os.path.join(ROOT, "bench", "results", "cluster.json")


def echo_node(port: int) -> int:
    """One bare echo process on a shared port (the baseline's N processes)."""
    import grpc

    from bench.servers import EchoInvoker
    from runner.service.admission import GRPC_WORKERS
    from runner.service.grpc.server import SERVER_OPTIONS, RpcExecutor

    servicer = type("Echo", (EchoInvoker, pb_grpc.InvokerServicer), {})()
    server = grpc.server(RpcExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="rpc"),
                         options=SERVER_OPTIONS[:2] + [("grpc.so_reuseport", 1)])
    pb_grpc.add_InvokerServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("READY", flush=True)
    sys.stdin.read()
    server.stop(0)
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Echo:
    def __init__(self, processes: int) -> None:
        self.port = free_port()
        self.procs = [subprocess.Popen([sys.executable, "-m", "bench.cluster_bench", "--echo-node",
                                        str(self.port)], cwd=ROOT, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
                      for _ in range(processes)]
        for p in self.procs:
            assert p.stdout.readline().strip() == "READY"
        self.address = f"127.0.0.1:{self.port}"

    def close(self) -> None:
        for p in self.procs:
            p.stdin.close()
            p.wait(timeout=15)


class Serve:
    """`runner serve` (with --workers N and --state, or embedded SQLite when url is None)."""

    def __init__(self, data_dir: str, workers: int, url: str | None, routing: str = "home") -> None:
        cmd = [sys.executable, "-m", "runner", "serve", "--data-dir", data_dir, "--port", "0",
               "--idle-ttl", "3600", "--max-environments", "512"]
        if url:
            cmd += ["--state", url, "--workers", str(workers), "--node-capacity", "64",
                    "--routing", routing]
        env = dict(os.environ, RUNNER_CGROUPS="off", RUNNER_ISOLATION="off")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
        self.address = None
        while self.address is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("runner serve did not start")
            if m := re.match(r"^listening on (\S+:\d+)", line):
                self.address = m.group(1)
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def deploy(address: str, runtime: str, names: list[str]) -> None:
    code, handler = fixture_code(runtime)
    ch = channel(address)
    try:
        stub = pb_grpc.FunctionsStub(ch)
        for name in names:
            stub.Deploy(pb.DeployRequest(name=name, code=code,
                                         config=fixture_config(runtime, handler)))
    finally:
        ch.close()


def load(address: str, names: list[str], clients: int, duration_s: float,
         warmup_s: float = 1.0) -> dict:
    """Closed loop: client i calls names[i % F]; after a warm-up, count for duration_s."""
    stubs = []
    chans = []
    for _ in range(clients):
        ch = channel(address)
        chans.append(ch)
        stubs.append(pb_grpc.InvokerStub(ch))
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    t_start = time.perf_counter() + warmup_s
    t_end = t_start + duration_s

    def loop(i: int) -> None:
        req = pb.InvokeRequest(name=names[i % len(names)], payload=PAYLOAD)
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    return
                r = stubs[i].Invoke(req)
                if r.function_error:
                    raise RuntimeError(r.payload[:200])
                if t0 >= t_start:
                    lat[i].append((time.perf_counter() - t0) * 1000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for ch in chans:
        ch.close()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]!r}")
    flat = sorted(x for xs in lat for x in xs)
    return {"clients": clients, "rps": len(flat) / duration_s,
            "p50_ms": percentile(flat, 50), "p99_ms": percentile(flat, 99)}


def peak(address: str, names: list[str], levels, duration_s: float) -> dict:
    runs = [load(address, names, c, duration_s) for c in levels]
    return {"peak_rps": max(r["rps"] for r in runs), "levels": runs}


def warm_p50(address: str, name: str, n: int) -> float:
    ch = channel(address)
    try:
        return stub_p50(pb_grpc.InvokerStub(ch), name, n)
    finally:
        ch.close()


def stub_p50(stub, name: str, n: int) -> float:
    """p50 in ms of n sequential invocations of `name` after 20 unmeasured ones."""
    req = pb.InvokeRequest(name=name, payload=PAYLOAD)
    for _ in range(20):
        stub.Invoke(req)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        stub.Invoke(req)
        out.append((time.perf_counter() - t0) * 1000)
    return percentile(sorted(out), 50)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runtimes", default="python")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--functions", type=int, default=8)
    ap.add_argument("--json", default=DEFAULT_JSON)
    ap.add_argument("--echo-node", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.echo_node:
        return echo_node(args.echo_node)
    from tests.real_servers import postgres_server
    from tests.state_fixtures import fresh_database, wait_ready

    duration = 2.0 if args.quick else 5.0
    levels = (8, 32) if args.quick else (8, 16, 32, 64)
    warm_n = 200 if args.quick else 1000
    names = [f"bench{i}" for i in range(args.functions)]
    pg = postgres_server(logical=False)
    pg.start()
    wait_ready(pg.url)
    results: dict = {"workers": args.workers, "functions": args.functions, "cpus": os.cpu_count(),
                     "duration_s": duration, "levels": list(levels), "runtimes": {}}
    work = tempfile.mkdtemp(prefix="cluster-bench-")
    try:
        echo = {}
        for n in (1, args.workers):
            e = Echo(n)
            try:
                echo[n] = peak(e.address, names, levels, duration)["peak_rps"]
            finally:
                e.close()
        results["echo_peak_rps"] = echo
        for runtime in args.runtimes.split(","):
            row: dict = {}
            n = args.workers
            for label, workers, url, routing in (
                    ("sqlite-1", 1, None, "home"), ("pg-1", 1, fresh_database(pg), "home"),
                    (f"pg-{n}", n, fresh_database(pg), "home"),
                    (f"pg-{n}-local", n, fresh_database(pg), "local")):
                s = Serve(os.path.join(work, f"{runtime}-{label}"), workers, url, routing)
                try:
                    deploy(s.address, runtime, names)
                    row[label] = {"warm_p50_ms": warm_p50(s.address, names[0], warm_n),
                                  **peak(s.address, names, levels, duration)}
                finally:
                    s.close()
            row["scale_ratio"] = row[f"pg-{n}"]["peak_rps"] / row["pg-1"]["peak_rps"]
            row["vs_echo_same_processes"] = row[f"pg-{n}"]["peak_rps"] / echo[n]
            row["scale_ratio_local"] = row[f"pg-{n}-local"]["peak_rps"] / row["pg-1"]["peak_rps"]
            row["vs_echo_same_processes_local"] = row[f"pg-{n}-local"]["peak_rps"] / echo[n]
            row["warm_p50_pg1_vs_sqlite"] = row["pg-1"]["warm_p50_ms"] / row["sqlite-1"]["warm_p50_ms"]
            results["runtimes"][runtime] = row
    finally:
        pg.stop()
        shutil.rmtree(pg.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    n = args.workers
    print(f"\ncluster bench: {os.cpu_count()} CPUs, {args.functions} functions, clients {levels}, "
          f"{duration:.0f} s per level")
    print(f"bare gRPC echo peak: 1 process {echo[1]:.0f} inv/s, {n} processes {echo[n]:.0f} inv/s")
    print("peak inv/s; x(pg-1) = N workers / 1 worker; x(echo) = N workers / echo in N processes")
    print(f"{'runtime':8} {'sqlite-1':>9} {'pg-1':>7} {f'pg-{n} home':>10} {f'pg-{n} local':>11} "
          f"{'x(pg-1)':>14} {'x(echo)':>14} {'p50 sqlite':>11} {'p50 pg-1':>9}")
    for runtime, row in results["runtimes"].items():
        print(f"{runtime:8} {row['sqlite-1']['peak_rps']:9.0f} {row['pg-1']['peak_rps']:7.0f} "
              f"{row[f'pg-{n}']['peak_rps']:10.0f} {row[f'pg-{n}-local']['peak_rps']:11.0f} "
              f"{row['scale_ratio']:6.2f}/{row['scale_ratio_local']:<7.2f} "
              f"{row['vs_echo_same_processes']:6.2f}/{row['vs_echo_same_processes_local']:<7.2f} "
              f"{row['sqlite-1']['warm_p50_ms']:9.2f}ms {row['pg-1']['warm_p50_ms']:7.2f}ms")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
