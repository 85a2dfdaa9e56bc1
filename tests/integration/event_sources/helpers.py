"""What the event source tests share: an embedded Runner with EventSources, the batch
recorder guest, and reading back what it recorded."""

from __future__ import annotations

import os

import pytest

from runner import Runner
from runner.invocation.runner import zip_directory
from runner.sources.manager import EventSources
from tests.async_helpers import wait_for

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH_RECORDER = os.path.join(HERE, "guests", "batch_recorder")


@pytest.fixture
def sources(tmp_path, guests_see_host_files):
    """(runner, EventSources, record dir): a runner with its pollers running."""
    rec = tmp_path / "records"
    rec.mkdir()
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    es = EventSources(runner)
    es.start()
    yield runner, es, str(rec)
    es.close()
    runner.close()


def deploy(runner: Runner, rec_dir: str, name: str = "rec", **env: str) -> None:
    runner.deploy(name, zip_directory(BATCH_RECORDER), runtime="python", handler="app.handler",
                  environment={"RECORD_DIR": rec_dir, **env}, concurrency=20)


def processed(rec_dir: str, name: str = "rec") -> list[tuple[str, str, str]]:
    """(record id, key, n) of every record the guest processed, in order."""
    path = os.path.join(rec_dir, f"{name}.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def wait_processed(rec_dir: str, count: int, name: str = "rec", timeout: float = 60.0):
    return wait_for(lambda: (got := processed(rec_dir, name)) and len({g[0] for g in got}) >= count and got,
                    f"{count} records processed", timeout)


@pytest.fixture
def es_server(sources):
    """(runner, EventSources, record dir, address): a gRPC server with the EventSources service."""
    from runner.service.grpc.event_sources import add_to_server
    from runner.service.grpc.server import build_server

    runner, es, rec = sources
    srv, port = build_server(runner, "127.0.0.1", 0)
    add_to_server(srv, es)
    srv.start()
    yield runner, es, rec, f"127.0.0.1:{port}"
    srv.stop(grace=1).wait()
