"""What metrics cost a warm invocation: the same environment, metrics on and off, in one run.

    .venv/bin/python bench/metrics_bench.py [--n 2000] [--json FILE]

One embedded Runner with a Python echo function at 1769 MB (one vCPU) behind an in-process
gRPC server on loopback. Warm invocations alternate in blocks of 50 between the Runner's
`Metrics` (counters, histograms, minute buckets, the RPC interceptor) and `NullMetrics`
(nothing counted, the interceptor not installed for the call): same environment, same server,
load from elsewhere reaching both sides alike; a second "off" side gives the comparison's
noise floor (A/A). Measured twice: through gRPC (what a client
sees) and embedded (`Runner.invoke`, where the metrics' share is largest). Target (issue 22):
warm p50 with metrics within 3% of without. Writes bench/results/metrics.json.
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
from runner import Runner  # noqa: E402
from runner.metrics import Metrics, NullMetrics  # noqa: E402

BLOCK = 50
TARGET_RATIO = 1.03
ECHO = "def handler(event, context):\n    return event\n"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def alternate(runner: Runner, sides: dict, call, n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {k: [] for k in sides}
    for metrics in sides.values():
        runner.metrics = metrics
        for _ in range(50):  # warm: the environment exists, its pages are in, labels cached
            call()
    while min(len(v) for v in samples.values()) < n:
        for key, metrics in sides.items():
            runner.metrics = metrics
            for _ in range(BLOCK):
                t0 = time.perf_counter()
                call()
                samples[key].append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="warm invocations per side and path")
    ap.add_argument("--json", help="where to write the results (default bench/results/metrics.json)")
    args = ap.parse_args()
    import grpc

    from runner.service.grpc.server import SERVER_OPTIONS, build_server
    from runner.service.proto import runner_api_pb2 as pb
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc

    results: dict = {"n": args.n, "block": BLOCK, "target_ratio": TARGET_RATIO, "paths": {}}
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as root:
        code = os.path.join(root, "code")
        os.makedirs(code)
        with open(os.path.join(code, "app.py"), "w") as f:
            f.write(ECHO)
        runner = Runner(os.path.join(root, "data"), idle_ttl_s=600)
        on = runner.metrics
        # A second "off" side measures the noise floor of the comparison (an A/A test).
        sides = {"metrics on": on, "metrics off": NullMetrics(), "off again": NullMetrics()}
        assert isinstance(on, Metrics)
        server, port = build_server(runner, "127.0.0.1", 0)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=SERVER_OPTIONS[:2])
        invoker = pb_grpc.InvokerStub(channel)
        try:
            runner.deploy("echo", code, runtime="python", handler="app.handler", memory_mb=1769)
            request = pb.InvokeRequest(name="echo", payload=b'{"x": 1}')
            paths = {
                "gRPC": lambda: invoker.Invoke(request),
                "embedded": lambda: runner.invoke("echo", b'{"x": 1}'),
            }
            print(f"{'path':9} {'side':12} {'warm p50 ms':>11} {'p99 ms':>8}  verdict")
            for path, call in paths.items():
                samples = alternate(runner, sides, call, args.n)
                fig = {k: {"p50_ms": statistics.median(v), "p99_ms": pct(v, 0.99)}
                       for k, v in samples.items()}
                ratio = fig["metrics on"]["p50_ms"] / fig["metrics off"]["p50_ms"]
                fig["p50_ratio"] = ratio
                fig["noise_ratio"] = fig["off again"]["p50_ms"] / fig["metrics off"]["p50_ms"]
                fig["verdict"] = "PASS" if ratio < TARGET_RATIO else "FAIL"
                results["paths"][path] = fig
                for k in ("metrics off", "off again", "metrics on"):
                    note = {"metrics on": f"p50 x{ratio:.3f} (target < x{TARGET_RATIO}): "
                                          f"{fig['verdict']}",
                            "metrics off": "baseline, same run",
                            "off again": f"A/A noise floor: x{fig['noise_ratio']:.3f}"}[k]
                    print(f"{path:9} {k:12} {fig[k]['p50_ms']:11.3f} {fig[k]['p99_ms']:8.3f}  {note}")
        finally:
            runner.metrics = on
            channel.close()
            server.stop(grace=1).wait()
            runner.close()
    print(f"JSON: {write_json('metrics.json', results, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
