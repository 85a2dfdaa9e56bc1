"""Rendezvous hashing, the router's choice with spill-over, the token, the worker command line."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest

from runner.cli.cluster_serve import add_cluster_arguments, check_cluster_args
from runner.cluster import auth
from runner.cluster.rendezvous import rank
from runner.cluster.router import Router
from runner.cluster.workers import node_argv
from runner.storage.postgres.nodes import Node


def ids(n):
    return [Node(f"n{i}", f"127.0.0.1:{1000 + i}", 4) for i in range(n)]


def test_every_node_agrees_and_a_leaving_node_moves_only_its_own_keys():
    nodes = ids(5)
    keys = [f"fn{i}" for i in range(2000)]
    home = {k: rank(k, nodes)[0].id for k in keys}
    assert home == {k: rank(k, list(reversed(nodes)))[0].id for k in keys}  # order-independent
    counts = Counter(home.values())
    assert min(counts.values()) > 2000 / 5 * 0.7  # spread evenly enough
    without = [n for n in nodes if n.id != "n2"]
    moved = [k for k in keys if rank(k, without)[0].id != home[k]]
    assert moved and all(home[k] == "n2" for k in moved)
    # ... and each moved key goes to its own second choice: where its overflow already went.
    assert all(rank(k, without)[0].id == rank(k, nodes)[1].id for k in moved)


class FakeNodes:
    def __init__(self, nodes):
        self.nodes = nodes

    def live(self):
        return self.nodes


def test_the_router_runs_at_home_and_spills_in_hash_order():
    nodes = ids(3)
    local = {"n": 0}
    routers = {n.id: Router(FakeNodes(nodes), n.id, lambda: local["n"], 4) for n in nodes}
    fn = "some-function"
    order = [n.id for n in rank(fn, nodes)]
    home = routers[order[0]]
    assert home.choose(fn) is None  # the home runs its own calls
    assert routers[order[1]].choose(fn).id == order[0]  # others forward to it
    assert routers[order[2]].choose(fn).id == order[0]
    # The home at capacity: it sends its overflow to the next node in the function's order.
    local["n"] = 4
    assert home.choose(fn).id == order[1]
    # A peer that reported itself full is skipped too.
    nodes[[n.id for n in nodes].index(order[0])] = Node(order[0], "a:1", 4, inflight=4)
    r = Router(FakeNodes(nodes), order[2], lambda: 0, 4)
    assert r.choose(fn).id == order[1]
    # Calls in flight to a peer count against it until answered.
    peer = r.choose(fn)
    with r.sending(peer), r.sending(peer), r.sending(peer), r.sending(peer):
        assert r.choose(fn) is None  # everyone else full: run here
    assert r.choose(fn).id == order[1]


def test_a_single_node_or_an_unknown_view_runs_locally():
    assert Router(FakeNodes(ids(1)), "n0", lambda: 0, 4).choose("f") is None

    class Broken:
        def live(self):
            raise OSError("database down")

    assert Router(Broken(), "n0", lambda: 0, 4).choose("f") is None


def test_token_check():
    assert auth.valid(None, "")  # no token configured: open (loopback only)
    assert auth.valid("Bearer s3cret", "s3cret")
    assert not auth.valid("Bearer wrong", "s3cret")
    assert not auth.valid(None, "s3cret") and not auth.valid("s3cret", "s3cret")
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1") and auth.is_loopback("localhost")
    assert not auth.is_loopback("0.0.0.0") and not auth.is_loopback("10.0.0.5")


def _args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    add_cluster_arguments(p)
    return p.parse_args(argv)


def test_cluster_arguments(monkeypatch):
    monkeypatch.delenv("RUNNER_TOKEN", raising=False)
    monkeypatch.delenv("RUNNER_STATE", raising=False)
    a = _args([])
    assert check_cluster_args(a) is None and a.workers == 1  # today's behaviour
    assert "--state postgresql" in check_cluster_args(_args(["--workers", "2"]))
    assert check_cluster_args(_args(["--state", "sqlite:///x"])).startswith("--state:")
    a = _args(["--state", "postgresql://h/db"])
    assert check_cluster_args(a) is None and a.workers >= 1
    assert "RUNNER_TOKEN" in check_cluster_args(_args(["--host", "0.0.0.0"]))
    monkeypatch.setenv("RUNNER_TOKEN", "t")
    assert check_cluster_args(_args(["--host", "0.0.0.0"])) is None


def test_code_store_arguments(monkeypatch):
    for k in ("RUNNER_CODE_STORE", "RUNNER_STATE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    state = ["--state", "postgresql://h/db"]
    # Without --state: refused, naming the fix (the embedded runner keeps code locally).
    problem = check_cluster_args(_args(["--code-store", "s3://code"]))
    assert problem.startswith("--code-store") and "--state postgresql" in problem
    assert "AWS_SECRET_ACCESS_KEY" in check_cluster_args(_args(state + ["--code-store", "s3://code"]))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert "s3://BUCKET" in check_cluster_args(_args(state + ["--code-store", "code"]))
    assert "--s3-endpoint" in check_cluster_args(
        _args(state + ["--code-store", "s3://code", "--s3-endpoint", "seaweedfs:8333"]))
    a = _args(state + ["--code-store", "s3://code/p", "--s3-endpoint", "http://seaweedfs:8333"])
    assert check_cluster_args(a) is None and a.code_store == "s3://code/p"
    monkeypatch.setenv("RUNNER_CODE_STORE", "s3://from-env")
    assert _args(state).code_store == "s3://from-env"
    assert _args([]).code_store == "s3://from-env" and check_cluster_args(_args([])).startswith(
        "--code-store")


@pytest.mark.parametrize("index", [0, 1])
def test_a_worker_gets_one_node_its_own_directory_and_the_shared_ports(index):
    argv = ["--state", "postgresql://x/y", "--workers", "4", "--port", "0", "--examples",
            "--data-dir=/d", "--http-port", "0", "--grace", "3"]
    out = node_argv(argv, index, 5000, 5001, "/d", workers=4)
    assert out[:2] == ["--state", "postgresql://x/y"] and "--grace" in out
    assert out[out.index("--workers") + 1] == "1" and out.count("--workers") == 1
    assert out[out.index("--port") + 1] == "5000" and out[out.index("--http-port") + 1] == "5001"
    assert out[out.index("--data-dir") + 1] == f"/d/node-{index}" and "--reuse-port" in out
    assert ("--examples" in out) == (index == 0)  # one node deploys the examples
    assert out[out.index("--max-environments") + 1] == "64"  # serve's 256 host-wide, over 4


def test_host_wide_settings_are_split_between_workers():
    argv = ["--max-environments=100", "--metrics-port", "9100", "--state", "postgresql://x/y"]
    out = node_argv(argv, 2, 5000, None, "/d", workers=3)
    assert out[out.index("--max-environments") + 1] == "33"
    assert out[out.index("--metrics-port") + 1] == "9102" and out.count("--metrics-port") == 1
    assert "--http-port" not in out
