"""Baseline: the floor. A bare grpcio echo server (bench/servers.py) with the runner's server
settings, driven by the same client loops as the runner, so our warm invoke can be reported as
overhead over gRPC itself and our throughput as a fraction of what gRPC alone sustains."""

from __future__ import annotations

from bench import measure
from bench.servers import ServerProcess

NAME = "grpc_echo"


def run(cfg) -> dict:
    with ServerProcess("echo") as srv:
        measure.wait_ready(srv.address)
        client = measure.InvokeClient(srv.address, "echo")
        try:
            warm = measure.summarize(measure.repeat(client.invoke, cfg.warm_n, warmup=20))
        finally:
            client.close()
        sweep = measure.load_sweep(srv.address, "echo", cfg.load_s, cfg.levels)
    return {
        "kind": "gRPC floor",
        "cold_p50_ms": None, "cold_p99_ms": None,
        "warm_p50_ms": warm["p50_ms"], "warm_p99_ms": warm["p99_ms"],
        "throughput_rps": measure.peak_rps(sweep),
        "warm": warm, "throughput": sweep,
        "na": {"cold": "an echo server has no environments to start"},
    }
