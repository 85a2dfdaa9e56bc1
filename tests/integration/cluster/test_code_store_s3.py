"""Code and layers in an S3-compatible store (issue 23, decision 077): two nodes on one
PostgreSQL and one SeaweedFS (which checks every request's signature). A function deployed
through node A runs on node B with its code fetched from the bucket (nothing in code_blobs);
a layer published through A is mounted at /opt by a function invoked on B. And `runner
serve --code-store` end to end: refused without --state, storing in the bucket with it."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import boto3
import psycopg
import pytest

from runner import Runner
from tests.async_helpers import WAIT_S
from tests.conftest import ROOT
from tests.integration.conftest import Client
from tests.seaweedfs import seaweedfs  # noqa: F401
from tests.state_fixtures import fresh_database

BUCKET = "runner-code"
APP = b"""import os, sys
sys.path.insert(0, "/opt/python")
def handler(event, context):
    try:
        import shared
        layer = shared.VALUE
    except ImportError:
        layer = None
    return {"code": "CODE", "layer": layer, "secret": os.environ.get("AWS_SECRET_ACCESS_KEY")}
"""


def package(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", APP.replace(b"CODE", marker.encode()))
    return buf.getvalue()


def layer(value: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/shared.py", f"VALUE = {value!r}\n")
    return buf.getvalue()


def aws_env(server) -> dict:
    return {"AWS_ACCESS_KEY_ID": server.credentials[0],
            "AWS_SECRET_ACCESS_KEY": server.credentials[1], "AWS_REGION": "us-east-1"}


def objects(server, prefix: str) -> set[str]:
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id=server.credentials[0],
                      aws_secret_access_key=server.credentials[1])
    try:
        found = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
        return {o["Key"].rsplit("/", 1)[1] for o in found}
    finally:
        s3.close()


def code_blob_rows(url: str) -> int:
    """Blobs in the database: none, and no table for them, when S3 holds the code."""
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('code_blobs')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT count(*) FROM code_blobs").fetchone()[0]


@pytest.fixture
def nodes(pg_server, seaweedfs, tmp_path, monkeypatch):  # noqa: F811
    """(url, prefix, [runner A, runner B]) sharing one database and one bucket prefix."""
    for k, v in aws_env(seaweedfs).items():
        monkeypatch.setenv(k, v)
    url, prefix = fresh_database(pg_server), "cluster-" + os.path.basename(tmp_path)[-8:]
    runners = []
    try:
        for name in ("a", "b"):
            runners.append(Runner(str(tmp_path / name), idle_ttl_s=60, state=url,
                                  code_store=f"s3://{BUCKET}/{prefix}",
                                  s3_endpoint=seaweedfs.url))
        yield url, prefix, runners
    finally:
        for r in runners:
            r.close()


def test_code_deployed_on_a_runs_on_b_from_s3(nodes, seaweedfs, tmp_path):  # noqa: F811
    url, prefix, (a, b) = nodes
    fv = a.deploy("fn", package("v1"), runtime="python3.12", handler="app.handler")
    assert objects(seaweedfs, prefix) == {fv.code_sha256}
    assert code_blob_rows(url) == 0  # the package is in the bucket, not the database
    assert not os.path.exists(tmp_path / "b" / "code" / fv.code_sha256)
    r = b.invoke("fn", b"{}")
    assert r.function_error is None, r.payload
    # The node's S3 credentials are its own: a function without a role never sees them.
    assert json.loads(r.payload) == {"code": "v1", "layer": None, "secret": None}
    assert os.path.isdir(tmp_path / "b" / "code" / fv.code_sha256)  # fetched, extracted on B


def test_a_layer_published_on_a_is_mounted_on_b(nodes, seaweedfs, tmp_path):  # noqa: F811
    url, prefix, (a, b) = nodes
    lv = a.publish_layer("shared", layer("from-a"), compatible_runtimes=("python3.12",))
    assert [x.name for x in b.list_layers()] == ["shared"]  # B lists what A published
    arn = f"arn:aws:lambda:us-east-1:000000000000:layer:shared:{lv.version}"
    a.deploy("uses-layer", package("v2"), runtime="python3.12", handler="app.handler",
             layers=(arn,))
    r = b.invoke("uses-layer", b"{}")
    assert r.function_error is None, r.payload
    assert json.loads(r.payload) == {"code": "v2", "layer": "from-a", "secret": None}
    assert lv.code_sha256 in objects(seaweedfs, prefix)
    assert os.path.isdir(tmp_path / "b" / "layers" / lv.code_sha256)
    # B publishes the next version: numbered after A's, seen by A.
    assert b.publish_layer("shared", layer("from-b")).version == lv.version + 1
    assert [x.version for x in a.layers.list_versions("shared")] == [lv.version + 1, lv.version]


def test_serve_refuses_a_code_store_without_shared_state(tmp_path):
    done = subprocess.run([sys.executable, "-m", "runner", "serve", "--port", "0", "--data-dir",
                           str(tmp_path / "d"), "--code-store", "s3://bucket/p"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--code-store" in done.stderr and "--state postgresql" in done.stderr


def test_serve_keeps_code_in_the_bucket(pg_server, seaweedfs, tmp_path):  # noqa: F811
    url, prefix = fresh_database(pg_server), "serve"
    env = dict(os.environ, **aws_env(seaweedfs), RUNNER_CODE_STORE=f"s3://{BUCKET}/{prefix}")
    env.pop("RUNNER_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--state", url, "--workers", "1", "--port", "0",
         "--s3-endpoint", seaweedfs.url, "--data-dir", str(tmp_path / "d"), "--grace", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        address = None
        deadline = time.monotonic() + WAIT_S
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "runner serve exited before listening"
            if m := re.match(r"^listening on (\S+:\d+) ", line):
                address = m.group(1)
        assert address
        client = Client(address)
        try:
            info = client.deploy("fn", package("served"), runtime="python3.12",
                                 handler="app.handler")
            assert json.loads(client.invoke("fn", b"{}").payload)["code"] == "served"
        finally:
            client.close()
        assert objects(seaweedfs, prefix) == {info.code_sha256}
        assert code_blob_rows(url) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        proc.stdout.close()
