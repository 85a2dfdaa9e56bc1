"""HTTP vs gRPC invoke latency, warm and cold, measured in one run against one server.

    .venv/bin/python bench/http_bench.py [--warm N] [--cold N] [--out PATH]

One in-process server (gRPC + the HTTP front on loopback ports) and the python echo guest.
Clients are the ones users would use: a gRPC stub on one channel, and one keep-alive
HTTP/1.1 connection (http.client) for the Lambda Invoke API and for a function route.
"warm" reuses an idle environment; "cold" redeploys (a new revision, untimed) before every
timed invocation, so each one starts an environment; "event accept" is the time to a 202 for
an asynchronous invocation (validation plus one fsync'ed commit). The in-process row is the floor: the
Runner with no network in between. Prints a table and writes JSON (default
bench/results/http_bench.json).
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
from http.client import HTTPConnection

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import grpc  # noqa: E402

from runner import Runner  # noqa: E402
from runner.service.grpc.server import SERVER_OPTIONS, build_server  # noqa: E402
from runner.service.http import HttpFront  # noqa: E402
from runner.service.proto import runner_api_pb2 as pb  # noqa: E402
from runner.service.proto import runner_api_pb2_grpc as pb_grpc  # noqa: E402

ECHO = os.path.join(ROOT, "guests", "python", "echo")
PAYLOAD = b'{"hello": "world", "n": 42}'


def summarize(samples_s: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples_s)

    def pct(p):
        return ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))]

    return {"n": len(ms), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "mean_ms": statistics.fmean(ms), "min_ms": ms[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", type=int, default=2000, help="warm invocations per client")
    ap.add_argument("--cold", type=int, default=30, help="cold invocations per client")
    ap.add_argument("--events", type=int, default=300, help="Event (async) accepts per client")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "http_bench.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as data:
        runner = Runner(data, idle_ttl_s=600)
        srv, gport = build_server(runner, "127.0.0.1", 0)
        srv.start()
        front = HttpFront(runner, "127.0.0.1", 0)
        front.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{gport}", options=SERVER_OPTIONS[:2])
        stub = pb_grpc.InvokerStub(channel)
        conn = HTTPConnection("127.0.0.1", front.port)
        try:
            runner.deploy("echo", ECHO, runtime="python", handler="app.handler", concurrency=4)
            runner.routes.add("POST", "/echo", "echo")

            def via_inproc():
                runner.invoke("echo", PAYLOAD)

            def via_grpc():
                resp = stub.Invoke(pb.InvokeRequest(name="echo", payload=PAYLOAD))
                assert resp.payload and not resp.function_error

            def http_post(path, headers):
                conn.request("POST", path, PAYLOAD, headers)
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200 and body, (resp.status, body)

            def via_invoke_api():
                http_post("/2015-03-31/functions/echo/invocations", {})

            def via_route():
                http_post("/echo", {"Content-Type": "application/json"})

            def event_grpc():
                resp = stub.Invoke(pb.InvokeRequest(name="echo", payload=PAYLOAD,
                                                    invocation_type=pb.EVENT))
                assert resp.status_code == 202

            def event_http():
                conn.request("POST", "/2015-03-31/functions/echo/invocations", PAYLOAD,
                             {"X-Amz-Invocation-Type": "Event"})
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 202

            clients = {"in-process": via_inproc, "grpc": via_grpc,
                       "http invoke api": via_invoke_api, "http route": via_route}
            results: dict[str, dict] = {}
            for name, fn in clients.items():
                for _ in range(50):  # warm-up: the environment, the connection, the caches
                    fn()
                samples = []
                for _ in range(args.warm):
                    t0 = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - t0)
                results[f"warm {name}"] = summarize(samples)
            for name in ("grpc", "http invoke api", "http route"):
                samples = []
                for i in range(args.cold):
                    runner.deploy("echo", environment={"BENCH_REVISION": f"{name}-{i}"})
                    t0 = time.perf_counter()
                    clients[name]()
                    samples.append(time.perf_counter() - t0)
                results[f"cold {name}"] = summarize(samples)
            # Accepting an Event = one fsync'ed SQLite commit; the events then run in the
            # background while later samples are taken, as they would in production.
            for name, fn in (("grpc", event_grpc), ("http", event_http)):
                samples = []
                for _ in range(args.events):
                    t0 = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - t0)
                results[f"event accept {name}"] = summarize(samples)
        finally:
            conn.close()
            channel.close()
            front.stop()
            srv.stop(grace=1).wait()
            runner.close()

    print(f"{'case':<26} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for case, r in results.items():
        print(f"{case:<26} {r['n']:>5} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} "
              f"{r['p99_ms']:>8.3f} {r['mean_ms']:>8.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"host": platform.node(), "python": platform.python_version(),
                   "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "payload_bytes": len(PAYLOAD), "results": results}, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
