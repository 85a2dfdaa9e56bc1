"""What placing reserved functions' calls at their home (decision 084) costs, as warm p50.

    python bench/placement_bench.py [--n 500] [--rounds 5] [--embedded-only]

1. Embedded: `Runner.invoke` of an unreserved echo in this process (one node, SQLite), the
   path every non-gRPC entry point takes. The only new work is the check of the resolved
   version's `concurrency_reserved` before the hook; run this part on the commit before and
   after to compare (`--embedded-only`: it uses only the public API).
2. Cluster: two Runners on one PostgreSQL, each behind its gRPC server (joined: the forwarder
   and the Runner's remote_invoke) and an HTTP front; HTTP Invoke of an unreserved function at
   node 0 with and without the hook installed, and of a reserved one through its home (the
   router answers "here") and through the other node (sent over the peer Invoke). Interleaved
   rounds, so that a busy machine's drift falls on every variant alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from http.client import HTTPConnection

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

ECHO = os.path.join(ROOT, "guests", "python", "echo")
PAYLOAD = b'{"hello": "world"}'


def p50(fn, n: int) -> float:
    for _ in range(20):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def embedded(work: str, n: int, rounds: int) -> list[float]:
    from runner import Runner

    with Runner(os.path.join(work, "embedded"), idle_ttl_s=3600) as r:
        r.deploy("free", ECHO, runtime="python", handler="app.handler")
        return [p50(lambda: r.invoke("free", PAYLOAD), n) for _ in range(rounds)]


def http_call(port: int, name: str):
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    path = f"/2015-03-31/functions/{name}/invocations"

    def call():
        conn.request("POST", path, PAYLOAD)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
    return call


def cluster(work: str, n: int, rounds: int) -> dict[str, list[float]]:
    from bench._cluster_nodes import start_node, stop_node
    from runner.cluster.rendezvous import rank
    from runner.service.http import HttpFront
    from tests.real_servers import postgres_server
    from tests.state_fixtures import fresh_database, wait_ready

    pg = postgres_server(logical=False)
    pg.start()
    wait_ready(pg.url)
    nodes, fronts = [], []
    try:
        url = fresh_database(pg)
        for i in range(2):
            nodes.append(start_node(work, i, url))
            fronts.append(HttpFront(nodes[-1].runner, "127.0.0.1", 0))
            fronts[-1].start()
        ids = [n.runner.state.node_id for n in nodes]

        def homed_on_0(prefix):
            return next(f"{prefix}{i}" for i in range(1000)
                        if rank(f"{prefix}{i}", ids, node_id=lambda x: x)[0] == ids[0])

        free, capped = homed_on_0("free"), homed_on_0("capped")
        nodes[0].runner.deploy(free, ECHO, runtime="python", handler="app.handler")
        nodes[0].runner.deploy(capped, ECHO, runtime="python", handler="app.handler", concurrency=10)
        time.sleep(1.2)  # both routers see both nodes; both registries the functions
        runner0 = nodes[0].runner
        hook = runner0.remote_invoke
        calls = {
            "unreserved, hook installed": http_call(fronts[0].port, free),
            "unreserved, no hook": http_call(fronts[0].port, free),
            "reserved at its home": http_call(fronts[0].port, capped),
            "reserved via the other node": http_call(fronts[1].port, capped),
        }
        samples: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(rounds):
            for label, call in calls.items():
                runner0.remote_invoke = None if label == "unreserved, no hook" else hook
                samples[label].append(p50(call, n))
        runner0.remote_invoke = hook
        return samples
    finally:
        for front in fronts:
            front.stop()
        for node in nodes:
            stop_node(node)
        pg.stop()
        shutil.rmtree(pg.workdir, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--embedded-only", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("RUNNER_CGROUPS", "off")
    work = tempfile.mkdtemp(prefix="placement-bench-")
    try:
        emb = embedded(work, args.n, args.rounds)
        samples = {} if args.embedded_only else cluster(work, args.n, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"warm p50 (ms), median of {args.rounds} rounds of {args.n} calls; "
          f"{os.cpu_count()} CPUs")
    print(f"  {'embedded Runner.invoke, unreserved':36} {statistics.median(emb):6.3f}   rounds: "
          + " ".join(f"{x:.3f}" for x in emb))
    for key, xs in samples.items():
        print(f"  {'HTTP ' + key:36} {statistics.median(xs):6.3f}   rounds: "
              + " ".join(f"{x:.3f}" for x in xs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
