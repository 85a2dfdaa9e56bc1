"""Nodes of a cluster inside one bench process: a `Runner` on a shared PostgreSQL behind its
own gRPC server, joined the way `runner serve --state postgresql://...` joins one
(cli/cluster_serve.py), and stopped in the reverse order. Used by the benches that measure
routing between two nodes (placement_bench.py, reserved_bench.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass


class JoinArgs:
    """The `runner serve` options join_cluster reads: loopback, home routing, a capacity no
    bench reaches."""

    host, peer_host, node_capacity, routing = "127.0.0.1", None, 64, "home"


@dataclass
class Node:
    runner: object
    server: object
    forwarder: object
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_node(work: str, index: int, state_url: str) -> Node:
    """Node `index`, its files under `work`/n<index>, its state at `state_url`; started."""
    from runner import Runner
    from runner.cli.cluster_serve import join_cluster
    from runner.service.grpc.server import build_server

    runner = Runner(os.path.join(work, f"n{index}"), idle_ttl_s=3600, state=state_url)
    forwarder = join_cluster.forwarder(runner, JoinArgs)
    server, port = build_server(runner, "127.0.0.1", 0, cluster=forwarder)
    join_cluster.register(runner, server, forwarder, JoinArgs)
    server.start()
    return Node(runner, server, forwarder, port)


def stop_node(node: Node) -> None:
    """The server first (no call arrives after), then what it used."""
    node.server.stop(grace=0).wait()
    node.server.provisioner.close()
    node.forwarder.close()
    node.runner.close()
