"""`runner serve` as a cluster node: the token on every call, and `--workers N` (N nodes
sharing one port, restarted when one dies)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runner import Runner
from runner.invocation.runner import zip_directory
from runner.service.grpc.cluster import with_token
from runner.service.grpc.server import build_server
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc
from tests.async_helpers import WAIT_S, wait_for
from tests.conftest import ROOT, guest
from tests.integration.conftest import Client
from tests.state_fixtures import fresh_database


def test_a_server_with_a_token_refuses_calls_without_it(tmp_path):
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    server, port = build_server(runner, "127.0.0.1", 0, token="s3cret")
    server.start()
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.FunctionsStub(channel).ListFunctions(pb.ListFunctionsRequest())
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "RUNNER_TOKEN" in info.value.details()
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes need none
        with with_token(grpc.insecure_channel(address), "wrong") as channel:
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.FunctionsStub(channel).ListFunctions(pb.ListFunctionsRequest())
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with with_token(grpc.insecure_channel(address), "s3cret") as channel:
            assert pb_grpc.FunctionsStub(channel).ListFunctions(pb.ListFunctionsRequest()).functions == []
        # The CLI sends RUNNER_TOKEN.
        env = dict(os.environ, RUNNER_ADDRESS=address, RUNNER_TOKEN="s3cret")
        done = subprocess.run([sys.executable, "-m", "runner", "list"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        server.stop(grace=0).wait()
        runner.close()


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "runner", "serve", "--host", "0.0.0.0", "--port",
                           "0", "--data-dir", str(tmp_path / "d")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "RUNNER_TOKEN" in done.stderr


def _live(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT id FROM cluster_nodes WHERE left_at IS NULL AND "
            "heartbeat_at > now() - interval '10 seconds'")}


def test_workers_share_the_port_and_a_dead_worker_is_replaced(pg_server, tmp_path):
    url = fresh_database(pg_server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--state", url, "--workers", "2", "--port", "0",
         "--data-dir", str(tmp_path / "d"), "--grace", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        address = None
        deadline = time.monotonic() + WAIT_S
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the supervisor exited before listening"
            if m := re.match(r"^listening on (\S+:\d+) \(2 workers", line):
                address = m.group(1)
        assert address
        assert len(_live(url)) == 2
        client = Client(address)
        try:
            client.deploy("echo", zip_directory(guest("python", "echo")), runtime="python",
                          handler="app.handler")
            for i in range(20):  # new connections: the kernel spreads them over both nodes
                c = Client(address)
                try:
                    assert not c.invoke("echo", b'{"i": %d}' % i).function_error
                finally:
                    c.close()
        finally:
            client.close()
        ran = [d for d in ("node-0", "node-1")
               if os.path.exists(tmp_path / "d" / d / "logs" / "echo.log")]
        assert ran, "no node logged the function"
        # kill -9 of one worker's process: the supervisor starts a new node in its place.
        with psycopg.connect(url) as conn:
            before = {r[0] for r in conn.execute("SELECT id FROM cluster_nodes")}
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2
        os.kill(int(children[0]), signal.SIGKILL)

        def replaced():
            with psycopg.connect(url) as conn:
                now = {r[0] for r in conn.execute("SELECT id FROM cluster_nodes")}
            return len(now - before) == 1 and len(_live(url) - before) == 1

        wait_for(replaced, "a new node in the dead worker's place")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        proc.stdout.close()
    # Both running nodes left cleanly; only the killed one may still look live (until expiry).
    still = _live(url)
    assert len(still) <= 1 and still <= before


def test_the_http_invoke_api_needs_the_token_and_function_routes_do_not(tmp_path):
    from http.client import HTTPConnection

    from runner.service.http import HttpFront

    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    runner.add_route("GET", "/hi", "echo")
    front = HttpFront(runner, "127.0.0.1", 0, token="s3cret")
    front.start()
    try:
        def call(method, path, headers):
            conn = HTTPConnection("127.0.0.1", front.port, timeout=30)
            try:
                conn.request(method, path, b"{}", headers)
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        invoke = "/2015-03-31/functions/echo/invocations"
        status, body = call("POST", invoke, {})
        assert status == 401 and b"RUNNER_TOKEN" in body
        assert call("POST", invoke, {"Authorization": "Bearer nope"})[0] == 401
        assert call("POST", invoke, {"Authorization": "Bearer s3cret"})[0] == 200
        assert call("POST", invoke, {"X-Runner-Token": "s3cret"})[0] == 200
        assert call("GET", "/hi", {})[0] == 200  # a function's public route
    finally:
        front.stop()
        runner.close()
