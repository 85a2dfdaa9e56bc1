"""Collecting code blobs nothing names any more (runner/storage/postgres/blob_gc.py, decision
083), over the database's table and over S3 (a real SeaweedFS)."""

from __future__ import annotations

import io
import threading
import uuid
import zipfile

import pytest

from runner.model import FunctionConfig
from runner.storage.postgres import blob_gc
from runner.storage.postgres.blobs import PostgresBlobStore
from runner.storage.postgres.functions import PostgresRegistry
from runner.storage.postgres.layers import PostgresLayerStore
from runner.storage.s3_blobs import S3BlobStore, S3Location
from runner.storage.state import Heartbeat
from tests.seaweedfs import seaweedfs  # noqa: F401
from tests.state_fixtures import fresh_database

CONFIG = FunctionConfig("python", "app.handler")


def package(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", f"def handler(e, c):\n    return {text!r}\n")
    return buf.getvalue()


@pytest.fixture(params=["postgresql", "s3"])
def registry(request, pg_server, tmp_path):
    url = fresh_database(pg_server)
    if request.param == "s3":
        server = request.getfixturevalue("seaweedfs")
        key, secret = server.credentials
        blobs = S3BlobStore.open_store(S3Location.parse(
            f"s3://runner-gc-test/t-{uuid.uuid4().hex[:8]}", server.url,
            {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}))
    else:
        blobs = PostgresBlobStore(url)
    reg = PostgresRegistry(url, str(tmp_path / "node"), blobs=blobs)
    yield reg
    reg.close()
    blobs.close()


def collect(reg):
    return blob_gc.collect(reg.db, reg.blobs)


def garbage(reg) -> set[str]:
    return {r["sha256"] for r in reg.db.execute("SELECT sha256 FROM blob_garbage")}


def test_a_deleted_functions_blob_is_collected_once_nothing_names_it(registry):
    a, b = package("a"), package("b")
    digest_a = registry.deploy("f", CONFIG, a).code_sha256
    digest_b = registry.deploy("g", CONFIG, b).code_sha256
    registry.deploy("h", CONFIG, a)  # the same bytes as f's
    registry.delete("f")
    assert collect(registry) == 0  # h still names it
    assert registry.blobs.exists(digest_a) and garbage(registry) == set()
    registry.delete("h")
    assert garbage(registry) == {digest_a}
    assert collect(registry) == 1
    assert not registry.blobs.exists(digest_a) and registry.blobs.exists(digest_b)
    assert garbage(registry) == set() and collect(registry) == 0


def test_a_blob_named_again_before_collection_is_kept(registry):
    code = package("again")
    digest = registry.deploy("f", CONFIG, code).code_sha256
    registry.delete("f")
    registry.deploy("f2", CONFIG, code)
    assert collect(registry) == 0
    assert registry.blobs.exists(digest) and garbage(registry) == set()


def test_a_layer_versions_blob_is_never_collected(registry, tmp_path):
    layers = PostgresLayerStore(registry.db, registry.blobs, str(tmp_path / "layers-node"))
    content = package("shared with a layer")
    layer = layers.publish("lib", content)
    digest = registry.deploy("f", CONFIG, content).code_sha256  # the same bytes
    registry.delete("f")
    layers.delete("lib", layer.version)  # deleted versions stay mountable by their users
    assert collect(registry) == 0
    assert registry.blobs.exists(digest)


def test_the_collector_waits_for_blob_writers(registry):
    digest = registry.deploy("f", CONFIG, package("held")).code_sha256
    registry.delete("f")
    held, release = threading.Event(), threading.Event()

    def writer():  # as a deploy between its put and its commit
        with registry.db.transaction() as conn:
            conn.execute(blob_gc.HOLD_AS_WRITER)
            held.set()
            release.wait(30)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert held.wait(30)
        assert collect(registry) is None  # skipped: a writer is between its put and commit
        assert registry.blobs.exists(digest)
    finally:
        release.set()
        t.join(30)
    assert collect(registry) == 1 and not registry.blobs.exists(digest)


def test_janitor_chores_run_at_most_once_per_period():
    beat = Heartbeat(nodes=None, node_id="n")
    runs = []
    beat.chores.append((60.0, lambda: runs.append(1)))

    def broken():
        raise OSError("S3 is down")

    beat.chores.append((60.0, broken))  # logged, and the other chores still run
    beat._run_chores(1000.0)
    beat._run_chores(1030.0)
    assert runs == [1]
    beat._run_chores(1061.0)
    assert runs == [1, 1]


def test_a_deploy_with_code_waits_while_the_collector_runs(registry):
    # A first write warms the store up (SeaweedFS makes its volume on the first one, seconds),
    # so that an unlocked deploy below would finish well within the second it is given.
    registry.deploy("warm-up", CONFIG, package("warm-up"))
    collecting, release = threading.Event(), threading.Event()

    def collector():  # holds the lock exclusively, as collect() does for its pass
        with registry.db.transaction() as conn:
            conn.execute(f"SELECT pg_advisory_xact_lock({blob_gc.BLOB_WRITERS})")
            collecting.set()
            release.wait(30)

    t = threading.Thread(target=collector)
    t.start()
    assert collecting.wait(30)
    done = threading.Event()
    deployer = threading.Thread(target=lambda: (registry.deploy("f", CONFIG, package("w")),
                                                done.set()))
    deployer.start()
    try:
        # Not done while the pass holds the lock (a deploy takes well under a second here).
        assert not done.wait(1.0)
    finally:
        release.set()
        t.join(30)
    deployer.join(30)
    assert done.is_set() and registry.resolve("f").code_sha256
