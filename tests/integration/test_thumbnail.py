"""The README's example end to end: SeaweedFS on loopback sends its filer webhook to the
runner's POST /events/s3; the trigger invokes guests/thumbnail (boto3 + Pillow bundled by its
build.py), which reads the upload from bucket `uploads` and writes a thumbnail to `thumbnails`.
"""

import io
import time

import pytest

from tests.integration.push_fixtures import push_server  # noqa: F401 (fixture)
from tests.seaweedfs import seaweedfs_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # botocore's datetime use

DEADLINE_S = 10.0  # the bound, from the upload's return to the thumbnail's existence


@pytest.fixture
def seaweedfs(push_server, tmp_path):
    port = push_server[3]
    server = seaweedfs_server(str(tmp_path / "seaweedfs"), f"http://127.0.0.1:{port}/events/s3")
    yield server
    server.stop()


def s3_client(url):
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="runner", aws_secret_access_key="runner")


def test_upload_makes_a_thumbnail(push_server, seaweedfs, tmp_path):
    from PIL import Image

    runner, push, _, _ = push_server
    import importlib.util
    import os

    from tests.conftest import GUESTS

    spec = importlib.util.spec_from_file_location("thumb_build",
                                                  os.path.join(GUESTS, "thumbnail", "build.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    code = build.build(str(tmp_path / "thumbnail.zip"))
    host_port = seaweedfs.url.removeprefix("http://")
    runner.deploy("thumbnail", code, runtime="python", handler="app.handler", memory_mb=512,
                  timeout_s=30, network_policy=f"allow={host_port}",
                  environment={"S3_ENDPOINT": seaweedfs.url})
    push.triggers.add("thumbs", "thumbnail", "uploads", events=["s3:ObjectCreated:*"])
    s3 = s3_client(seaweedfs.url)
    s3.create_bucket(Bucket="uploads")
    s3.create_bucket(Bucket="thumbnails")
    picture = io.BytesIO()
    Image.new("RGB", (1024, 640), (200, 30, 30)).save(picture, "JPEG")
    s3.put_object(Bucket="uploads", Key="holiday/beach photo.jpg", Body=picture.getvalue())
    uploaded = time.monotonic()
    while True:
        try:
            data = s3.get_object(Bucket="thumbnails", Key="holiday/beach photo.jpg")["Body"].read()
            break
        except s3.exceptions.NoSuchKey:
            if time.monotonic() - uploaded > DEADLINE_S:
                logs = "\n".join(runner.read_logs("thumbnail", 40))
                raise AssertionError(f"no thumbnail within {DEADLINE_S} s; logs:\n{logs}")
            time.sleep(0.1)
    with Image.open(io.BytesIO(data)) as thumb:
        assert max(thumb.size) <= 128 and thumb.size == (128, 80)
