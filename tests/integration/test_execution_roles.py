"""Execution roles (issue 20): a function with a role finds its credentials and endpoints
where the AWS SDKs look; one without sees none; rotation reaches new environments. Real
sandboxed Python and Node environments."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from runner.errors import InvalidParameter

PY = b"""import os
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3")
def handler(event, context):
    return {k: os.environ.get(k) for k in KEYS}
"""
JS = b"""exports.handler = async () => ({id: process.env.AWS_ACCESS_KEY_ID || null,
  s3: process.env.AWS_ENDPOINT_URL_S3 || null});
"""


def zipped(name: str, text: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def call(runner, name, qualifier=None):
    r = runner.invoke(name, b"{}", qualifier=qualifier)
    assert r.function_error is None, r.payload
    return json.loads(r.payload)


def test_role_credentials_reach_the_function_and_rotate(runner):
    runner.create_role("store", "AKIA-ONE", "secret-one", s3_endpoint_url="http://127.0.0.1:8333")
    runner.deploy("with-role", zipped("app.py", PY), runtime="python", handler="app.handler",
                  role="arn:aws:iam::000000000000:role/store")
    runner.deploy("no-role", zipped("app.py", PY), runtime="python", handler="app.handler")
    out = call(runner, "with-role")
    assert out["AWS_ACCESS_KEY_ID"] == "AKIA-ONE" and out["AWS_SECRET_ACCESS_KEY"] == "secret-one"
    assert out["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:8333"
    assert out["AWS_SESSION_TOKEN"] is None and out["AWS_ENDPOINT_URL"] is None
    assert set(call(runner, "no-role").values()) == {None}

    runner.publish("with-role")
    assert call(runner, "with-role", "1")["AWS_ACCESS_KEY_ID"] == "AKIA-ONE"
    runner.update_role("store", access_key_id="AKIA-TWO", session_token="tok")
    for qualifier in (None, "1"):  # $LATEST and a published version alike
        out = call(runner, "with-role", qualifier)
        assert (out["AWS_ACCESS_KEY_ID"], out["AWS_SESSION_TOKEN"]) == ("AKIA-TWO", "tok")
    runner.delete_role("store")
    assert set(call(runner, "with-role").values()) == {None}


def test_node_sees_the_role(runner):
    runner.create_role("js", "AKIA-JS", "x", s3_endpoint_url="http://s3.local:9000")
    runner.deploy("js-role", zipped("index.js", JS), runtime="nodejs", handler="index.handler",
                  role="js")
    assert call(runner, "js-role") == {"id": "AKIA-JS", "s3": "http://s3.local:9000"}


def test_user_set_credentials_are_refused(runner):
    with pytest.raises(InvalidParameter) as info:
        runner.deploy("f", zipped("app.py", PY), runtime="python", handler="app.handler",
                      environment={"AWS_SECRET_ACCESS_KEY": "x"})
    assert "reserved" in info.value.message
