"""A real server with the HTTP front (gRPC beside it) on loopback ports, for HTTP tests."""

from __future__ import annotations

import json
from http.client import HTTPConnection

import boto3
import pytest
from botocore.config import Config

from runner import Runner
from runner.service.grpc.server import build_server
from runner.service.http import HttpFront


class Http:
    """A keep-alive HTTP/1.1 client for one server; returns (status, headers, body)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: list[tuple[str, str]] | dict | None = None):
        if isinstance(body, str):
            body = body.encode()
        self.conn.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            self.conn.putheader(k, v)
        if body is not None:
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data

    def json(self, method: str, path: str, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        return status, hdrs, json.loads(data) if data else None

    def reconnect(self) -> None:
        """A new connection (after the server closed one)."""
        port = self.conn.port
        self.conn.close()
        self.conn = HTTPConnection("127.0.0.1", port, timeout=60)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def http_server(tmp_path):
    """(runner, grpc address, http port) of a started server; stopped after the test."""
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60, async_retry_base_s=0.05)
    srv, port = build_server(runner, "127.0.0.1", 0)
    srv.start()
    front = HttpFront(runner, "127.0.0.1", 0)
    front.start()
    yield runner, f"127.0.0.1:{port}", front.port
    front.stop()
    srv.stop(grace=5).wait()
    runner.close()


@pytest.fixture
def hc(http_server):
    """An HTTP client of the `http_server` fixture."""
    c = Http(http_server[2])
    yield c
    c.close()


@pytest.fixture
def lam(http_server):
    """boto3's own Lambda client on the front of `http_server`. No SDK retries: a 429 must
    reach the test as TooManyRequestsException, and a failure must not run twice."""
    client = boto3.client(
        "lambda", endpoint_url=f"http://127.0.0.1:{http_server[2]}", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    yield client
    client.close()
