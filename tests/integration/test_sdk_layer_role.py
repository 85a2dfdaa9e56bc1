"""Unmodified boto3 code inside the sandbox reaches an S3-compatible endpoint with the
function's execution role (issue 20): the SDK comes from the layer scripts/build_sdk_layer.py
builds, the credentials and endpoint from the role; a function without a role has no
credentials. The "store" is a stub S3 endpoint in this test that records what it was sent."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

LIST = (b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID></Owner><Buckets>'
        b'<Bucket><Name>photos</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate>'
        b'</Bucket></Buckets></ListAllMyBucketsResult>')

APP = b"""import boto3
s3 = boto3.client("s3")  # at init, as Lambda examples do (and under the init boost)
def handler(event, context):
    return [b["Name"] for b in s3.list_buckets()["Buckets"]]
"""


@pytest.fixture
def stub_s3(stub_http):
    seen = []

    def respond(req):
        seen.append(dict(req.headers))
        return 200, "application/xml", LIST

    return stub_http(respond), seen


def test_boto3_in_the_sandbox_uses_the_role(runner, stub_s3, tmp_path):
    url, seen = stub_s3
    layer = tmp_path / "sdk.zip"
    subprocess.run([sys.executable, f"{ROOT}/scripts/build_sdk_layer.py", "--python",
                    str(layer), "--services", "s3"], check=True, capture_output=True)
    lv = runner.publish_layer("aws-sdk", layer.read_bytes(), compatible_runtimes=("python3.12",))
    arn = f"arn:aws:lambda:us-east-1:000000000000:layer:aws-sdk:{lv.version}"
    runner.create_role("photos", "AKIA-ROLE", "role-secret", s3_endpoint_url=url)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", APP)
    settings = dict(runtime="python3.12", handler="app.handler", layers=(arn,), memory_mb=1024,
                    timeout_s=30, network=True)  # network: the stub listens on the host
    runner.deploy("thumbs", buf.getvalue(), role="photos", **settings)
    r = runner.invoke("thumbs", b"{}")
    assert r.function_error is None, r.payload
    assert json.loads(r.payload) == ["photos"]
    assert "Credential=AKIA-ROLE/" in seen[-1]["Authorization"]

    runner.deploy("no-role", buf.getvalue(), **settings)
    r = runner.invoke("no-role", b"{}")
    assert r.function_error == "Unhandled"
    assert json.loads(r.payload)["errorType"] == "NoCredentialsError"
    assert len(seen) == 1  # nothing unsigned reached the store
