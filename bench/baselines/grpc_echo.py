"""Baseline: the floor. A bare grpcio echo server (bench/servers.py) with the runner's server
settings, driven by the same client loops as the runner, so our warm invoke can be reported as
overhead over gRPC itself and our throughput as a fraction of what gRPC alone sustains.

These are the floor's own figures, taken before any runtime. Each runtime's figures are also
judged against the echo measured *alongside* them (workloads.RunnerSession.figures alternates
echo and runner calls), which is what the targets use."""

from __future__ import annotations

from bench import measure
from bench.servers import ServerProcess

NAME = "grpc_echo"


HOP_NAME = "grpc_echo_hop"


def run_hop(cfg) -> dict:
    """The echo with one round trip to a peer process per call (bench/servers.py, `echo-hop`):
    the floor of any server that runs guests in other processes. Context for the runner's
    overhead, not a target."""
    with ServerProcess("echo-hop") as srv:
        out = run(cfg, srv)
    out.update(kind="gRPC floor + process hop", label="gRPC echo + process hop")
    out["na"] = {"cold": "its peer processes start with the server"}
    return out


GUEST_NAMES = {"python": "grpc_echo_python_guest", "nodejs": "grpc_echo_node_guest"}
_GUEST_LABELS = {"python": "Python", "nodejs": "Node"}


def run_guest(cfg, runtime: str) -> dict:
    """The echo with one invocation in a real guest of `runtime` per call (bench/servers.py,
    `echo-guest` / `echo-node-guest`): the floor of a runner with our guests, i.e. with a
    host that does nothing else. Context for how the runner's overhead splits into guest and
    host."""
    if runtime == "nodejs":
        from runner.environments.node.process_policy import find_node

        if find_node() is None:
            return {"unavailable": "no `node` binary on this host"}
    kind = "echo-guest" if runtime == "python" else "echo-node-guest"
    with ServerProcess(kind) as srv:
        out = run(cfg, srv)
    label = _GUEST_LABELS[runtime]
    out.update(kind=f"gRPC floor + {label} guest", label=f"gRPC echo + {label} guest")
    out["na"] = {"cold": "its guests start with the server"}
    return out


def run(cfg, server: ServerProcess | None = None) -> dict:
    """Figures of the echo `server` (one is started when None)."""
    if server is None:
        with ServerProcess("echo") as srv:
            return run(cfg, srv)
    address = server.address
    measure.wait_ready(address)
    client = measure.InvokeClient(address, "echo")
    try:
        warm = measure.summarize(measure.repeat(client.invoke, cfg.warm_n, warmup=20))
    finally:
        client.close()
    sweep = measure.load_sweep(address, "echo", cfg.load_s, cfg.levels, server_pid=server.pid)
    return {
        "kind": "gRPC floor", "label": "gRPC echo (floor)",
        "cold_p50_ms": None, "cold_p99_ms": None,
        "warm_p50_ms": warm["p50_ms"], "warm_p99_ms": warm["p99_ms"],
        "throughput_rps": measure.peak_rps(sweep),
        "warm": warm, "throughput": sweep,
        "na": {"cold": "an echo server has no environments to start"},
    }
