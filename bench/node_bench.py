"""Node.js runtime latency: cold starts from the pre-started pool and warm invokes, side by side
with the baseline of spawning `node` for every invocation, in one run.

    .venv/bin/python bench/node_bench.py [--n 200] [--warm 2000] [--out bench/results/node.json]

Rows (latency from "an invocation arrives" to "its result is back", milliseconds):
  spawn per invoke   create + start (spawn node, hello, limits, init) + invoke, nothing reused:
                     the baseline every cold start would pay without a pool
  cold, pre-started  take a launched spare from PreStartPool + start (limits, init) + invoke
  cold, snapshot     as above, but the spare runs from a V8 startup snapshot that already holds
                     the evaluated handler (only for guests that can be bundled; see
                     docs/runtimes-nodejs.md)
  warm               invoke on a READY environment
  grpc warm / cold   the same through the real gRPC server (Runner + PoolManager + service)
Guests: guests/node/hello (light) and guests/node/heavy_init (~250 ms of module-level work).
Benchmarks measure; the tests never assert timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runner.environments.backends import ProcessBackend  # noqa: E402
from runner.environments.base import InvokeRequest  # noqa: E402
from runner.environments.node.process_policy import find_node  # noqa: E402
from runner.environments.node.runtime import NodeRuntime  # noqa: E402
from runner.environments.node.snapshot import SnapshotStore  # noqa: E402
from runner.model import FunctionConfig, FunctionVersion  # noqa: E402
from runner.pool.prestart import PreStartPool  # noqa: E402

MEMORY_MB = 1769


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary(samples: list[float]) -> dict:
    return {"n": len(samples), "p50": pct(samples, 50), "p95": pct(samples, 95),
            "p99": pct(samples, 99), "mean": statistics.fmean(samples)}


def version(guest: str, revision: int) -> FunctionVersion:
    # 1769 MB = one full vCPU (CPU share is memory/1769, as on Lambda), as bench/run.py does:
    # the figures then measure the platform, not a CPU quota stretching CPU-bound work.
    cfg = FunctionConfig(runtime="nodejs", handler="index.handler", memory_mb=MEMORY_MB, timeout_s=10)
    return FunctionVersion(f"bench-{guest}", "$LATEST", revision, cfg, "0" * 64,
                           os.path.join(ROOT, "guests", "node", guest))


def request() -> InvokeRequest:
    return InvokeRequest(str(uuid.uuid4()), b'{"name": "bench"}', 10.0, time.monotonic() + 10.0,
                         {"function_name": "bench", "deadline_ms": int(time.time() * 1000) + 10000})


def check(outcome) -> None:
    if outcome.error is not None:
        raise SystemExit(f"benchmark invocation failed: {outcome.error.to_document()}")


def bench_spawn(backend, v, n) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        env = backend.create(v)
        env.start()
        check(env.invoke(request()))
        out.append((time.perf_counter() - t0) * 1000)
        env.destroy()
    return out


def bench_prestarted(backends, v, n) -> tuple[list[float], int]:
    """Each round waits (untimed) until a spare is ready, then times take+start+invoke: the
    latency a cold start sees when the pool's sizing kept up with demand."""
    pre = PreStartPool(backends)
    out, misses = [], 0
    try:
        pre.prewarm(v)
        for _ in range(n):
            end = time.monotonic() + 10
            while pre.stats().get(v.key, {}).get("spares", 0) < 1 and time.monotonic() < end:
                time.sleep(0.002)
            t0 = time.perf_counter()
            env = pre.take(v)
            if env is None:
                misses += 1
                env = backends["nodejs"].create(v)
            env.start()
            check(env.invoke(request()))
            out.append((time.perf_counter() - t0) * 1000)
            env.destroy()
    finally:
        pre.close()
    return out, misses


def bench_warm(backend, v, n) -> list[float]:
    env = backend.create(v)
    env.start()
    out = []
    try:
        for _ in range(50):  # let V8 optimise the hot path first
            env.invoke(request())
        for _ in range(n):
            t0 = time.perf_counter()
            check(env.invoke(request()))
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        env.destroy()
    return out


def bench_grpc(n_cold: int, n_warm: int) -> dict:
    import grpc  # noqa: F401  (the service imports it; fail early with a clear message)

    from runner import Runner
    from runner.invocation.runner import zip_directory
    from runner.service.grpc.server import SERVER_OPTIONS, build_server
    from runner.service.proto import runner_api_pb2 as pb
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc

    results = {}
    with tempfile.TemporaryDirectory() as data:
        runner = Runner(data, idle_ttl_s=60)
        srv, port = build_server(runner, "127.0.0.1", 0)
        srv.start()
        chan = grpc.insecure_channel(f"127.0.0.1:{port}", options=SERVER_OPTIONS[:2])
        fns, inv = pb_grpc.FunctionsStub(chan), pb_grpc.InvokerStub(chan)
        try:
            fns.Deploy(pb.DeployRequest(name="hello", code=zip_directory(os.path.join(ROOT, "guests", "node", "hello")),
                                        config=pb.FunctionConfig(runtime="nodejs", handler="index.handler", memory_mb=MEMORY_MB)))
            call = lambda: inv.Invoke(pb.InvokeRequest(name="hello", payload=b'{"name": "bench"}'))  # noqa: E731
            for _ in range(50):
                call()
            warm = []
            for _ in range(n_warm):
                t0 = time.perf_counter()
                r = call()
                warm.append((time.perf_counter() - t0) * 1000)
                assert not r.function_error and not r.report.cold_start
            results["grpc warm"] = warm
            # Cold over gRPC: a new deploy (new revision) per round forces a cold start; the
            # pre-start pool is warmed first (untimed) as for the direct rows.
            cold = []
            for i in range(n_cold):
                fns.Deploy(pb.DeployRequest(name="hello", code=zip_directory(os.path.join(ROOT, "guests", "node", "hello")),
                                            config=pb.FunctionConfig(runtime="nodejs", handler="index.handler", memory_mb=MEMORY_MB,
                                                                     environment={"ROUND": str(i)})))
                v = runner.registry.resolve("hello", None)
                runner.pool.prestart.prewarm(v)
                end = time.monotonic() + 10
                while runner.pool.prestart.stats().get(v.key, {}).get("spares", 0) < 1 and time.monotonic() < end:
                    time.sleep(0.002)
                t0 = time.perf_counter()
                r = call()
                cold.append((time.perf_counter() - t0) * 1000)
                assert r.report.cold_start and not r.function_error
            results["grpc cold, pre-started"] = cold
        finally:
            chan.close()
            srv.stop(grace=2).wait()
            runner.close()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="cold starts per row (light handler)")
    ap.add_argument("--heavy-n", type=int, default=20, help="cold starts per row (heavy_init)")
    ap.add_argument("--warm", type=int, default=2000, help="warm invocations")
    ap.add_argument("--no-grpc", action="store_true", help="skip the rows through the gRPC server")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "node_bench.json"))
    args = ap.parse_args(argv)

    node = find_node()
    if node is None:
        raise SystemExit("node_bench: no `node` binary on PATH; install Node.js 20")
    work = tempfile.mkdtemp(prefix="node-bench-")
    plain = {"nodejs": ProcessBackend(NodeRuntime(node), work)}
    snapshots = SnapshotStore(node, os.path.join(work, "snapshots"), enabled=True)
    snap = {"nodejs": ProcessBackend(NodeRuntime(node, snapshots), work)}

    load_before = os.getloadavg()  # the machine may be shared: record how busy it was
    rows: dict[str, dict] = {}
    misses: dict[str, int] = {}
    rev = iter(range(1, 1000))
    for guest, n in (("hello", args.n), ("heavy_init", args.heavy_n)):
        v = version(guest, next(rev))
        plain["nodejs"].prepare(v)
        rows[f"{guest}: spawn per invoke"] = summary(bench_spawn(plain["nodejs"], v, n))
        samples, misses[f"{guest}: cold, pre-started"] = bench_prestarted(plain, v, n)
        rows[f"{guest}: cold, pre-started"] = summary(samples)
        vs = version(guest, next(rev))
        t0 = time.perf_counter()
        snap["nodejs"].prepare(vs)  # builds the snapshot blob once per version
        build_ms = (time.perf_counter() - t0) * 1000
        if snapshots.blob_for(vs) is not None:
            rows[f"{guest}: spawn per invoke, snapshot"] = summary(bench_spawn(snap["nodejs"], vs, n))
            samples, misses[f"{guest}: cold, snapshot"] = bench_prestarted(snap, vs, n)
            rows[f"{guest}: cold, snapshot"] = summary(samples)
            rows[f"{guest}: cold, snapshot"]["snapshot_build_ms"] = build_ms
        rows[f"{guest}: warm"] = summary(bench_warm(plain["nodejs"], v, args.warm if guest == "hello" else args.warm // 4))
    if not args.no_grpc:
        for name, samples in bench_grpc(min(args.n, 50), args.warm).items():
            rows[f"hello: {name}"] = summary(samples)

    print(f"{'row':44} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    for name, s in rows.items():
        print(f"{name:44} {s['n']:5d} {s['p50']:9.3f} {s['p95']:9.3f} {s['p99']:9.3f}")
    for name, m in misses.items():
        if m:
            print(f"note: {name}: {m} of the timed cold starts found no spare")
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "node": node, "node_version": os.popen(f"{node} --version").read().strip(),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "memory_mb": MEMORY_MB,
        "isolation": __import__("runner.confinement.namespaces", fromlist=["mode"]).mode(),
        "rows": rows, "prestart_misses": misses,
        "targets": {"hello: cold, pre-started p50 ms": 10.0, "hello: warm p50 ms": 1.0},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"load average (1 min) before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"wrote {args.out}")
    snapshots.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
