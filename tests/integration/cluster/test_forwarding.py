"""Two nodes in one process on one PostgreSQL, each a Runner behind its own gRPC server: a
call accepted by either runs on the function's home node; when the home is unreachable the
accepting node runs it itself."""

from __future__ import annotations

import os
import time

import pytest

from runner.cluster.rendezvous import rank
from tests.async_helpers import wait_for
from tests.conftest import guest
from tests.integration.cluster.conftest import start_grpc_nodes, stop_grpc_nodes
from tests.integration.conftest import Client
from tests.state_fixtures import fresh_database


@pytest.fixture
def two_nodes(pg_server, tmp_path):
    nodes = start_grpc_nodes(fresh_database(pg_server), tmp_path, 2, capacity=16)
    yield nodes
    stop_grpc_nodes(nodes)


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
