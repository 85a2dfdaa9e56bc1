"""Decision 084 end to end: a reserved function's concurrency holds cluster-wide for the entry
points other than gRPC Invoke. Two nodes in one process on one PostgreSQL, each a Runner
behind a gRPC server joined to the cluster (its peer port and forwarder, which sets the
Runner's remote_invoke) and an HTTP front, as `runner serve --state ... --http-port` builds
them. The function has reserved concurrency 1 and sleeps; the span_recorder guest writes each
invocation's start and end to a shared file, so overlap is seen whichever node ran it.

* HTTP Invoke (RequestResponse) through both nodes at once: one runs, at the home; the others
  get 429 TooManyRequestsException, also through the node that is not the home.
* HTTP routes the same way (429 Too Many Requests past the limit).
* Async events (the Lambda API's Event) queued through both nodes: whichever node's dispatcher
  claims one, it runs at the home, one at a time; throttled attempts wait in the queue, and
  every event runs once, under the request id its 202 named.
* A home whose peer port cannot be reached: the call runs at the next node in order (here), as
  the gRPC path does.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest

from runner.cluster.rendezvous import rank
from runner.service.http import HttpFront
from tests.async_helpers import wait_for
from tests.conftest import ROOT
from tests.integration.cluster.conftest import start_grpc_nodes, stop_grpc_nodes
from tests.integration.http_fixtures import Http
from tests.state_fixtures import fresh_database

pytestmark = pytest.mark.usefixtures("guests_see_host_files")

SPANS = os.path.join(ROOT, "tests", "guests", "span_recorder")
INVOKE = "/2015-03-31/functions/{}/invocations"


@pytest.fixture
def two_nodes(pg_server, tmp_path):
    """[(runner, grpc server, forwarder, http port)], node i's HTTP front on its own port."""
    nodes = start_grpc_nodes(fresh_database(pg_server), tmp_path, 2, capacity=16,
                             async_retry_base_s=0.05)
    fronts = []
    try:
        for runner, *_ in nodes:
            fronts.append(HttpFront(runner, "127.0.0.1", 0))
            fronts[-1].start()
        yield [(*node[:3], front.port) for node, front in zip(nodes, fronts)]
    finally:
        for front in fronts:
            front.stop()
        stop_grpc_nodes(nodes)


@pytest.fixture
def capped(two_nodes, tmp_path):
    """(record dir, index of the home node) of `capped`: reserved concurrency 1."""
    record = tmp_path / "spans"
    record.mkdir()
    runner = two_nodes[0][0]
    runner.deploy("capped", SPANS, runtime="python", handler="app.handler", timeout_s=30,
                  concurrency=1, environment={"RECORD_DIR": str(record)})
    assert runner.get("capped").config.concurrency_reserved
    ids = [r.state.node_id for r, *_ in two_nodes]
    home = ids.index(rank("capped", ids, node_id=lambda n: n)[0])
    # Every router's view holds both nodes (REFRESH_S) and both registries see the function.
    wait_for(lambda: all(_peers(f) == 2 for _, _, f, _ in two_nodes), "both routers' views")
    wait_for(lambda: _resolves(two_nodes[1][0]), "the function on the second node")
    return str(record), home


def _peers(forwarder) -> int:
    return len(forwarder.router.peers())


def _resolves(runner) -> bool:
    try:
        return runner.get("capped").config.concurrency_reserved
    except Exception:
        return False


def _spans(record: str) -> list[tuple[str, float, float]]:
    path = os.path.join(record, "capped.spans")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(rid, float(a), float(b)) for rid, a, b in (line.split() for line in f)]


def _overlaps(spans) -> list:
    ordered = sorted(spans, key=lambda s: s[1])
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b[1] < a[2]]


def _ran_on(nodes, name: str = "capped") -> list[int]:
    return [i for i, (runner, *_rest) in enumerate(nodes)
            if os.path.exists(os.path.join(runner.data_dir, "logs", f"{name}.log"))]


def _http_burst(ports: list[int], body: bytes | None, method: str = "POST",
                path: str = INVOKE.format("capped")) -> list:
    """One HTTP request per port, all at once: [(status, headers, body)]."""
    barrier = threading.Barrier(len(ports))
    results: list = []

    def one(port):
        client = Http(port)
        try:
            barrier.wait()
            results.append(client.request(method, path, body))
        finally:
            client.close()

    threads = [threading.Thread(target=one, args=(p,)) for p in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_http_invokes_through_both_nodes_run_one_at_a_time_at_the_home(two_nodes, capped):
    record, home = capped
    other = 1 - home
    ports = [two_nodes[home][3], two_nodes[other][3]] * 2
    results = _http_burst(ports, json.dumps({"sleep": 3}).encode())
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert len(ok) == 1 and len(refused) == 3, [(s, h.get("x-amzn-ErrorType"), b)
                                               for s, h, b in results]
    for status, headers, _ in refused:
        assert status == 429 and headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert len(_spans(record)) == 1
    assert _ran_on(two_nodes) == [home]  # the other node started no environment of its own
    assert not any(v.name == "capped" for v, *_c in two_nodes[other][0].pool.environment_counts())
    # Once it is free, a call through the other node runs (at the home) and answers as a local
    # one would: the payload, the request id, the executed version, the log tail.
    client = Http(two_nodes[other][3])
    try:
        status, headers, body = client.request("POST", INVOKE.format("capped"), b"{}",
                                               {"X-Amz-Log-Type": "Tail"})
    finally:
        client.close()
    assert status == 200, body
    rid = headers["x-amzn-RequestId"]
    assert json.loads(body) == {"ran": rid}
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    assert f"REPORT RequestId: {rid}" in base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    assert _ran_on(two_nodes) == [home]


def test_routed_http_calls_through_both_nodes_run_one_at_a_time_at_the_home(two_nodes, capped):
    record, home = capped
    other = 1 - home
    two_nodes[0][0].add_route("GET", "/capped", "capped")
    time.sleep(1.2)  # each node reads the routes' generation at most once a second
    results = _http_burst([two_nodes[home][3], two_nodes[other][3]] * 2, None, "GET",
                          "/capped?sleep=3")
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 429, 429, 429], [(s, b) for s, _, b in results]
    assert len(_spans(record)) == 1 and _ran_on(two_nodes) == [home]


def test_async_events_from_both_nodes_run_one_at_a_time_at_the_home(two_nodes, capped):
    record, home = capped
    rids = []
    for i in range(6):
        client = Http(two_nodes[i % 2][3])
        try:
            status, headers, _ = client.request(
                "POST", INVOKE.format("capped"), json.dumps({"sleep": 0.5}).encode(),
                {"X-Amz-Invocation-Type": "Event"})
        finally:
            client.close()
        assert status == 202
        rids.append(headers["x-amzn-RequestId"])
    wait_for(lambda: len(_spans(record)) >= 6, "all six events to run", timeout=120)
    spans = _spans(record)
    assert sorted(rid for rid, *_ in spans) == sorted(rids)  # each once, under its own id
    assert _overlaps(spans) == []
    assert _ran_on(two_nodes) == [home]
    for runner, *_ in two_nodes:
        assert runner.dead_letters("capped") == []


def test_an_unreachable_home_leaves_the_call_to_the_next_node(two_nodes, capped):
    record, home = capped
    other = 1 - home
    # The home's gRPC server stops: its heartbeat goes on (still live in every view), but
    # the other node cannot reach it, and the next node in order, itself, runs the call.
    two_nodes[home][1].stop(grace=0).wait()
    client = Http(two_nodes[other][3])
    try:
        status, headers, body = client.request("POST", INVOKE.format("capped"), b"{}")
    finally:
        client.close()
    assert status == 200, body
    assert json.loads(body) == {"ran": headers["x-amzn-RequestId"]}
    assert _ran_on(two_nodes) == [other]
    assert len(_spans(record)) == 1
