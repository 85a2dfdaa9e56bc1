"""Decision 079: a reserved function's calls stay at its home node (the router never spills
them), the successor in its order takes over when the home is gone or unreachable, the first
calls wait for the first view of the cluster, and a peer's refusal reaches the client with the
peer's status code and error type (a real gRPC peer, no PostgreSQL needed)."""

from __future__ import annotations

import socket
import threading
from concurrent import futures

import grpc
import pytest

from runner import Runner
from runner.cluster.rendezvous import rank
from runner.cluster.router import Router
from runner.errors import ResourceNotFound, TooManyRequests
from runner.model import DEFAULT_CONCURRENCY, FunctionConfig
from runner.service.grpc.cluster import Forwarder
from runner.service.grpc.server import build_server
from runner.service.grpc.status import ERROR_TYPE_KEY, abort
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc
from runner.storage.postgres.nodes import Node
from tests.conftest import guest


class FakeNodes:
    """The membership table's `live()` as a list the test changes."""

    def __init__(self, nodes):
        self.nodes = nodes

    def live(self):
        return list(self.nodes)


def nodes(n, capacity=4):
    return [Node(f"n{i}", f"127.0.0.1:{1000 + i}", capacity) for i in range(n)]


def test_a_reserved_function_never_spills_even_when_its_home_is_full():
    view = nodes(3)
    fn = "reserved-fn"
    order = [n.id for n in rank(fn, view)]
    local = {"n": 4}  # every node's own pool full
    routers = {i: Router(FakeNodes(view), i, lambda: local["n"], 4) for i in order}
    # The home at capacity still runs its reserved calls itself (its pool refuses past the
    # limit), where an unreserved function's overflow goes on to the next node.
    assert routers[order[0]].choose(fn, reserved=True) is None
    assert routers[order[0]].choose(fn).id == order[1]
    # The home reported full: everyone else still sends to it, never to the next node.
    view[[n.id for n in view].index(order[0])] = Node(order[0], "a:1", 4, inflight=4)
    for other in order[1:]:
        r = Router(FakeNodes(view), other, lambda: 0, 4)
        assert r.choose(fn, reserved=True).id == order[0]
        got = r.choose(fn)  # unreserved: spills past the full home, to the next in order
        assert (got.id if got else other) == order[1]


def test_the_successor_takes_over_when_the_home_dies_or_cannot_be_reached():
    view = nodes(3)
    fn = "reserved-fn"
    order = [n.id for n in rank(fn, view)]
    live = FakeNodes(view)
    r = Router(live, order[2], lambda: 0, 4)
    assert r.choose(fn, reserved=True).id == order[0]
    # Unreachable from here (skipped by the forwarder): the next in order, one node only.
    assert r.choose(fn, reserved=True, skip=frozenset({order[0]})).id == order[1]
    assert Router(live, order[1], lambda: 0, 4).choose(
        fn, reserved=True, skip=frozenset({order[0]})) is None  # the successor runs it
    # Dead (its heartbeat lapsed): gone from the live set, every node agrees on the successor.
    live.nodes = [n for n in view if n.id != order[0]]
    for me in order[1:]:
        r = Router(live, me, lambda: 0, 4)
        got = r.choose(fn, reserved=True)
        assert (got.id if got else me) == order[1]


def test_calls_before_the_first_view_wait_for_it_instead_of_running_here():
    view = nodes(2)
    fn = next(f"f{i}" for i in range(100) if rank(f"f{i}", view)[0].id == "n1")
    gate = threading.Event()
    reads = []

    class SlowNodes:
        def live(self):
            reads.append(1)
            gate.wait(10)
            return view

    r = Router(SlowNodes(), "n0", lambda: 0, 4)
    got = []
    threads = [threading.Thread(target=lambda: got.append(r.choose(fn))) for _ in range(8)]
    for t in threads:
        t.start()
    # None of them has an answer while the first view is being read.
    threads[0].join(0.3)
    assert got == []
    gate.set()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and all(p is not None and p.id == "n1" for p in got)
    assert len(reads) == 1  # one read served them all


def test_concurrency_reserved_is_set_by_naming_a_concurrency_and_cleared_with_the_default(tmp_path):
    assert FunctionConfig.from_dict({"runtime": "python", "handler": "a.b"}).concurrency_reserved \
        is False  # rows stored before the field load unreserved
    runner = Runner(str(tmp_path / "d"), idle_ttl_s=60)
    try:
        code = guest("python", "echo")
        v = runner.deploy("f", code, runtime="python", handler="app.handler")
        assert not v.config.concurrency_reserved
        assert not runner.deploy("f", None, memory_mb=256).config.concurrency_reserved
        v = runner.deploy("f", None, concurrency=3)
        assert v.config.concurrency_reserved and v.config.concurrency == 3
        assert runner.deploy("f", None, memory_mb=512).config.concurrency_reserved  # kept
        v = runner.deploy("f", None, concurrency=DEFAULT_CONCURRENCY, concurrency_reserved=False)
        assert not v.config.concurrency_reserved and v.config.concurrency == DEFAULT_CONCURRENCY
    finally:
        runner.close()
    # Persisted: a new Runner on the same directory reads it back.
    runner = Runner(str(tmp_path / "d"), idle_ttl_s=60)
    try:
        runner.deploy("f", None, concurrency=2)
        runner.close()
        runner = Runner(str(tmp_path / "d"), idle_ttl_s=60)
        assert runner.get("f").config.concurrency_reserved
    finally:
        runner.close()


# ---------------------------------------------------------------- relayed status, real gRPC


class RefusingPeer(pb_grpc.InvokerServicer):
    """A peer node's Invoker that refuses as a real node's edge does (status.abort)."""

    def __init__(self):
        self.calls = 0

    def Invoke(self, request, context):
        self.calls += 1
        if request.name.startswith("missing"):
            abort(context, ResourceNotFound(f"Function not found: {request.name}"))
        abort(context, TooManyRequests(f"Rate exceeded: function {request.name!r} is at its "
                                       "concurrency limit (2)"))


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there


@pytest.fixture
def relay(tmp_path):
    peer = RefusingPeer()
    peer_server = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_InvokerServicer_to_server(peer, peer_server)
    peer_port = peer_server.add_insecure_port("127.0.0.1:0")
    peer_server.start()
    runner = Runner(str(tmp_path / "d"), idle_ttl_s=60)
    members = FakeNodes([])
    forwarder = Forwarder(Router(members, "me", lambda: 0, 4), "me",
                          reserved=lambda name, qualifier: "reserved" in name)
    server, port = build_server(runner, "127.0.0.1", 0, cluster=forwarder)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield (pb_grpc.InvokerStub(channel), peer, members, f"127.0.0.1:{peer_port}", forwarder)
    channel.close()
    forwarder.close()
    server.stop(grace=0).wait()
    peer_server.stop(grace=0).wait()
    runner.close()


def _homed(prefix, view, order):
    """A function name whose order over `view` is `order` (node ids)."""
    return next(f"{prefix}{i}" for i in range(5000)
                if [n.id for n in rank(f"{prefix}{i}", view)] == order)


@pytest.mark.parametrize("prefix,code,etype", [
    ("fn", grpc.StatusCode.RESOURCE_EXHAUSTED, "TooManyRequestsException"),
    ("missing", grpc.StatusCode.NOT_FOUND, "ResourceNotFoundException"),
])
def test_a_peers_refusal_reaches_the_client_with_its_code_and_type(relay, prefix, code, etype):
    stub, peer, members, peer_address, forwarder = relay
    members.nodes = [Node("me", "127.0.0.1:1", 4), Node("peer", peer_address, 4)]
    name = _homed(prefix, members.nodes, ["peer", "me"])
    with pytest.raises(grpc.RpcError) as info:
        stub.Invoke(pb.InvokeRequest(name=name, payload=b"{}"))
    assert info.value.code() == code  # not INTERNAL
    assert dict(info.value.trailing_metadata())[ERROR_TYPE_KEY] == etype
    assert name in info.value.details() and peer.calls == 1


def test_an_unreachable_home_of_a_reserved_function_passes_to_the_next_not_here(relay):
    stub, peer, members, peer_address, forwarder = relay
    members.nodes = [Node("me", "127.0.0.1:1", 4), Node("peer", peer_address, 4),
                     Node("gone", _free_address(), 4)]
    name = _homed("fn-reserved", members.nodes, ["gone", "peer", "me"])
    with pytest.raises(grpc.RpcError) as info:
        stub.Invoke(pb.InvokeRequest(name=name, payload=b"{}"))
    # Answered by "peer", the next in the function's order (here it would be NOT_FOUND).
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and peer.calls == 1
    # Unreserved: an unreachable home means the call runs here (this node has no such
    # function: NOT_FOUND from here, the peer not asked).
    name = _homed("fn", members.nodes, ["gone", "peer", "me"])
    with pytest.raises(grpc.RpcError) as info:
        stub.Invoke(pb.InvokeRequest(name=name, payload=b"{}"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and peer.calls == 1
