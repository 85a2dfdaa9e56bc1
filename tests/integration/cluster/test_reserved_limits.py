"""Decision 079 end to end: three nodes in one process on one PostgreSQL, each a Runner behind
its own gRPC server, node capacity 2 so that a busy home spills. A function with reserved
concurrency 2, called six times at once through all three nodes (four at its home, which is
then at node capacity), runs exactly two at a time cluster-wide, at its home only; the other four calls are refused with RESOURCE_EXHAUSTED
(TooManyRequestsException), never INTERNAL. An unreserved function's overflow spills to the
other nodes."""

from __future__ import annotations

import json
import os
import threading
import time

import grpc
import pytest

from runner.cluster.rendezvous import rank
from runner.service.grpc.status import ERROR_TYPE_KEY
from tests.conftest import guest
from tests.integration.cluster.conftest import start_grpc_nodes, stop_grpc_nodes
from tests.integration.conftest import Client
from tests.state_fixtures import fresh_database

SLEEP_S = 8.0  # each admitted call holds its slot this long: all six arrive meanwhile


@pytest.fixture
def three_nodes(pg_server, tmp_path):
    nodes = start_grpc_nodes(fresh_database(pg_server), tmp_path, 3, capacity=2)
    clients = [Client(address) for *_, address in nodes]
    yield [(*node[:3], client) for node, client in zip(nodes, clients)]
    for client in clients:
        client.close()
    stop_grpc_nodes(nodes)


def _start(calls, results, t0):
    """Start `calls` [(client, name)] at once, each appending (outcome, seconds since t0) to
    `results`, the outcome the response or the RpcError; the threads."""
    barrier = threading.Barrier(len(calls))

    def one(client, name):
        barrier.wait()
        try:
            out = client.invoke(name, json.dumps({"seconds": SLEEP_S}).encode())
        except grpc.RpcError as exc:
            out = exc
        results.append((out, time.monotonic() - t0))

    threads = [threading.Thread(target=one, args=call) for call in calls]
    for t in threads:
        t.start()
    return threads


def _burst(calls):
    results: list = []
    for t in _start(calls, results, time.monotonic()):
        t.join(120)
    return results


def _ran_on(nodes, name):
    return [i for i, (runner, *_rest) in enumerate(nodes)
            if os.path.exists(os.path.join(runner.data_dir, "logs", f"{name}.log"))]


def test_reserved_concurrency_holds_across_nodes_and_refusals_keep_their_code(three_nodes):
    nodes = three_nodes
    ids = [runner.state.node_id for runner, *_ in nodes]
    slow = guest("python", "timeout")
    r0 = nodes[0][0]
    r0.deploy("capped", slow, runtime="python", handler="app.handler", timeout_s=30,
              concurrency=2)
    assert r0.get("capped").config.concurrency_reserved
    home = ids.index(rank("capped", ids, node_id=lambda n: n)[0])
    time.sleep(1.1)  # every router's view holds all three nodes (REFRESH_S)
    results: list = []
    t0 = time.monotonic()
    # Two calls at the home fill it (node capacity 2) ...
    threads = _start([(nodes[home][3], "capped")] * 2, results, t0)
    deadline = time.monotonic() + 30
    while nodes[home][1].invocations.held < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert nodes[home][1].invocations.held == 2
    # ... then four more: two at the home, which would spill an unreserved function's calls to
    # the next node, and one through each other node.
    others = [nodes[i][3] for i in range(3) if i != home]
    threads += _start([(nodes[home][3], "capped")] * 2 + [(c, "capped") for c in others],
                      results, t0)
    for t in threads:
        t.join(120)
    ok = [t for out, t in results if not isinstance(out, grpc.RpcError)]
    refused = [(out, t) for out, t in results if isinstance(out, grpc.RpcError)]
    assert len(ok) == 2 and len(refused) == 4, results
    for out, t in refused:
        assert out.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, out  # never INTERNAL
        assert dict(out.trailing_metadata())[ERROR_TYPE_KEY] == "TooManyRequestsException"
        assert t < min(ok)  # refused while the two admitted calls were still running
    assert _ran_on(nodes, "capped") == [home]  # the home only: nothing spilled
    # The two other nodes forwarded their calls and started no environment of their own.
    for i, (runner, *_rest) in enumerate(nodes):
        if i != home:
            assert not any(v.name == "capped" for v, *_c in runner.pool.environment_counts())


def test_an_unreserved_functions_overflow_spills_to_other_nodes(three_nodes):
    nodes = three_nodes
    ids = [runner.state.node_id for runner, *_ in nodes]
    r0 = nodes[0][0]
    r0.deploy("free", guest("python", "timeout"), runtime="python", handler="app.handler",
              timeout_s=30)
    assert not r0.get("free").config.concurrency_reserved
    order = [ids.index(x) for x in rank("free", ids, node_id=lambda n: n)]
    time.sleep(1.1)
    # Six calls through one node that is not the home, each started once the previous one is
    # counted where it went (forwarded: the router's `sent`; here: the node's admission), so
    # every routing decision sees the ones before it. Past the home's capacity (2) the rest go
    # on in the function's order: two here (the second in order), two at the third node.
    runner, server, forwarder, client = nodes[order[1]]

    def placed() -> int:
        return sum(p.sent for p in forwarder.router.peers()) + server.invocations.held

    results: list = []
    threads = []
    t0 = time.monotonic()
    for i in range(6):
        threads += _start([(client, "free")], results, t0)
        deadline = time.monotonic() + 30
        while placed() < i + 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert placed() == i + 1
    for t in threads:
        t.join(120)
    assert all(not isinstance(out, grpc.RpcError) for out, _ in results), results
    assert _ran_on(nodes, "free") == [0, 1, 2]  # spilled over all three, two each
