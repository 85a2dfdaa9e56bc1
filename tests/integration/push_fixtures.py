"""A real server with the push side (scheduler, triggers, topics) on loopback: gRPC and HTTP."""

from __future__ import annotations

import pytest

from runner import Runner
from runner.service.grpc.server import build_server
from runner.service.http import HttpFront
from runner.service.push import Push
from tests.integration.http_fixtures import Http


@pytest.fixture
def push_server(tmp_path):
    """(runner, push, grpc address, http port); the scheduler thread is running."""
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60, async_retry_base_s=0.05)
    push = Push(runner)
    srv, port = build_server(runner, "127.0.0.1", 0, push=push)
    srv.start()
    front = HttpFront(runner, "127.0.0.1", 0, push=push)
    front.start()
    push.start()
    yield runner, push, f"127.0.0.1:{port}", front.port
    front.stop()
    srv.stop(grace=5).wait()
    push.close()
    runner.close()


@pytest.fixture
def phc(push_server):
    c = Http(push_server[3])
    yield c
    c.close()
