"""Warm p50 of a reserved function against an unreserved one on a two-node cluster (decision
079): reserved concurrency is held at the home node by routing alone, so the only new work on
the invoke path is the accepting node's cached lookup of the function's
`concurrency_reserved`. Measured both ways through each node (the home runs the call itself;
the other node forwards it), and with the lookup switched off (today's routing without it),
in interleaved rounds so that a busy machine's drift falls on every variant alike.

    python bench/reserved_bench.py [--n 300] [--rounds 3]

Two Runners in this process on one PostgreSQL (as tests/integration/cluster does), each
behind its own gRPC server; the client is in the same process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.cluster_bench import stub_p50  # noqa: E402
from bench.measure import channel  # noqa: E402
from runner.service.proto import runner_api_pb2_grpc as pb_grpc  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("RUNNER_CGROUPS", "off")
    from bench._cluster_nodes import start_node, stop_node
    from runner.cluster.rendezvous import rank
    from runner.service.grpc.cluster import _unreserved
    from tests.conftest import guest
    from tests.real_servers import postgres_server
    from tests.state_fixtures import fresh_database, wait_ready

    pg = postgres_server(logical=False)
    pg.start()
    wait_ready(pg.url)
    work = tempfile.mkdtemp(prefix="reserved-bench-")
    nodes = []
    try:
        url = fresh_database(pg)
        nodes = [start_node(work, i, url) for i in range(2)]
        ids = [n.runner.state.node_id for n in nodes]

        def homed_on_0(prefix):
            return next(f"{prefix}{i}" for i in range(1000)
                        if rank(f"{prefix}{i}", ids, node_id=lambda n: n)[0] == ids[0])

        free, capped = homed_on_0("free"), homed_on_0("capped")
        echo = guest("python", "echo")
        nodes[0].runner.deploy(free, echo, runtime="python", handler="app.handler")
        nodes[0].runner.deploy(capped, echo, runtime="python", handler="app.handler", concurrency=10)
        time.sleep(1.2)  # both routers see both nodes
        chans = [channel(n.address) for n in nodes]
        stubs = [pb_grpc.InvokerStub(c) for c in chans]
        lookups = [n.forwarder.reserved for n in nodes]
        samples: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for via, stub in (("home", stubs[0]), ("forwarded", stubs[1])):
                for label, name in (("unreserved", free), ("reserved", capped)):
                    samples.setdefault(f"{via:9} {label}", []).append(stub_p50(stub, name, args.n))
                for n in nodes:  # the forwarders without the lookup
                    n.forwarder.reserved = _unreserved
                samples.setdefault(f"{via:9} no lookup", []).append(stub_p50(stub, free, args.n))
                for n, lookup in zip(nodes, lookups):
                    n.forwarder.reserved = lookup
        for c in chans:
            c.close()
        t0 = time.perf_counter()
        for _ in range(10000):
            lookups[1](capped, None)
        lookup_us = (time.perf_counter() - t0) / 10000 * 1e6
    finally:
        for node in nodes:
            stop_node(node)
        pg.stop()
        shutil.rmtree(pg.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"warm p50 (ms), median of {args.rounds} rounds of {args.n} calls; {os.cpu_count()} CPUs")
    print(f"  the lookup alone: {lookup_us:.1f} us per call")
    for key, xs in samples.items():
        print(f"  {key:22} {statistics.median(xs):6.3f}   rounds: "
              + " ".join(f"{x:.3f}" for x in xs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
