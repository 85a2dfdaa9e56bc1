"""Two nodes in one process on one PostgreSQL, each a Runner behind its own gRPC server: a
call accepted by either runs on the function's home node; when the home is unreachable the
accepting node runs it itself."""

from __future__ import annotations

import os
import time

import pytest

from runner import Runner
from runner.cli.cluster_serve import join_cluster
from runner.cluster.rendezvous import rank
from runner.service.grpc.server import build_server
from tests.async_helpers import wait_for
from tests.conftest import guest
from tests.integration.conftest import Client
from tests.state_fixtures import fresh_database


class Args:
    host, peer_host, node_capacity, routing = "127.0.0.1", None, 16, "home"


@pytest.fixture
def two_nodes(pg_server, tmp_path):
    url = fresh_database(pg_server)
    nodes = []
    for i in range(2):
        runner = Runner(str(tmp_path / f"n{i}"), idle_ttl_s=60, state=url)
        forwarder = join_cluster.forwarder(runner, Args)
        server, port = build_server(runner, "127.0.0.1", 0, cluster=forwarder)
        join_cluster.register(runner, server, forwarder, Args)
        server.start()
        nodes.append((runner, server, forwarder, f"127.0.0.1:{port}"))
    yield nodes
    for runner, server, forwarder, _ in nodes:
        server.stop(grace=0).wait()
        server.provisioner.close()
        forwarder.close()
        runner.close()


def test_calls_run_at_home_and_fall_back_when_it_is_gone(two_nodes):
    (r0, s0, f0, a0), (r1, s1, f1, a1) = two_nodes
    ids = [r0.state.node_id, r1.state.node_id]
    # A function whose home is node 0, so calls accepted by node 1 are forwarded.
    name = next(f"fn{i}" for i in range(100)
                if rank(f"fn{i}", ids, node_id=lambda n: n)[0] == ids[0])
    r0.deploy(name, guest("python", "echo"), runtime="python", handler="app.handler")
    time.sleep(1.1)  # both routers' views of the cluster refresh (REFRESH_S)
    c0, c1 = Client(a0), Client(a1)
    try:
        for c in (c0, c1, c1, c0, c1):
            assert not c.invoke(name, b'{"x": 1}').function_error
        assert f1.forwarded == 3 and f0.forwarded == 0
        assert not os.path.exists(os.path.join(r1.data_dir, "logs", f"{name}.log"))  # never ran
        s0.stop(grace=0).wait()  # node 0's server is gone (its row still looks live)
        r = c1.invoke(name, b'{"x": 2}')
        assert not r.function_error and r.report.cold_start  # ran on node 1 itself
        assert f1.forwarded == 3
    finally:
        c0.close()
        c1.close()


def test_provisioned_environments_live_on_the_home_node_only(two_nodes):
    (r0, s0, f0, a0), (r1, s1, f1, a1) = two_nodes
    ids = [r0.state.node_id, r1.state.node_id]
    name = next(f"pc{i}" for i in range(100)
                if rank(f"pc{i}", ids, node_id=lambda n: n)[0] == ids[0])
    time.sleep(1.1)  # both routers see both nodes
    # Deployed through the node that is not its home: the home provisions it.
    r1.deploy(name, guest("python", "echo"), runtime="python", handler="app.handler",
              provisioned=2)

    def idle(runner) -> int:
        return sum(i for v, i, _, _ in runner.pool.environment_counts() if v.name == name)

    wait_for(lambda: idle(r0) >= 2, "the home node's provisioned environments", timeout=30)
    time.sleep(2.5)  # a provisioner tick on the other node too
    assert idle(r1) == 0
