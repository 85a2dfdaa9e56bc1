"""boto3 and the AWS CLI against a node that requires the cluster token (issue 23, decision 073): signing
with access key id `runner` and the token as secret is the credential; a wrong secret, a
wrong key id or an old date are refused with AWS's error types; bearer tokens still work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from http.client import HTTPConnection
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runner import Runner
from runner.invocation.code_input import zip_directory
from runner.service.http import HttpFront
from tests.conftest import guest

TOKEN = "s3cret-token"


@pytest.fixture
def front(tmp_path):
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    front = HttpFront(runner, "127.0.0.1", 0, token=TOKEN)
    front.start()
    yield front
    front.stop()
    runner.close()


def client(front, key_id="runner", secret=TOKEN):
    return boto3.client(
        "lambda", endpoint_url=f"http://127.0.0.1:{front.port}", region_name="eu-west-1",
        aws_access_key_id=key_id, aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))


def test_boto3_signed_with_the_token_manages_and_invokes_functions(front):
    lam = client(front)
    try:
        lam.create_function(FunctionName="fn", Runtime="python3.12",
                            Role="arn:aws:iam::000000000000:role/r", Handler="app.handler",
                            Code={"ZipFile": zip_directory(guest("python", "echo"))})
        lam.get_waiter("function_active_v2").wait(FunctionName="fn")
        out = lam.invoke(FunctionName="fn", Payload=json.dumps({"a": [1, "é"]}).encode())
        assert out["StatusCode"] == 200
        assert json.loads(out["Payload"].read()) == {"a": [1, "é"]}
        # A query string and an ARN (percent-encoded ':' in the path) are signed too.
        listed = lam.list_functions(MaxItems=5)
        assert [f["FunctionName"] for f in listed["Functions"]] == ["fn"]
        arn = listed["Functions"][0]["FunctionArn"]
        assert lam.get_function(FunctionName=arn)["Configuration"]["FunctionName"] == "fn"
        lam.delete_function(FunctionName="fn")
    finally:
        lam.close()


def test_a_wrong_secret_or_key_id_is_refused(front):
    for key_id, secret, error in (("runner", "wrong", "InvalidSignatureException"),
                                  ("AKIDEXAMPLE", TOKEN, "UnrecognizedClientException")):
        lam = client(front, key_id, secret)
        try:
            with pytest.raises(ClientError) as info:
                lam.list_functions()
            assert info.value.response["Error"]["Code"] == error
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        finally:
            lam.close()


def test_a_replayed_old_signature_is_refused(front):
    # botocore signs with the clock it reads: twenty minutes ago is beyond the 15 allowed.
    old = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=20)
    lam = client(front)
    try:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=old):
            with pytest.raises(ClientError) as info:
                lam.list_functions()
        assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert "Signature expired" in info.value.response["Error"]["Message"]
        assert lam.list_functions()["Functions"] == []  # the clock back: accepted
    finally:
        lam.close()


def test_the_bearer_token_still_works_and_nothing_is_refused_without_a_header(front):
    def call(headers):
        conn = HTTPConnection("127.0.0.1", front.port, timeout=30)
        try:
            conn.request("GET", "/2015-03-31/functions/", headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    assert call({"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert call({"X-Runner-Token": TOKEN})[0] == 200
    status, body = call({})
    assert status == 401 and b"SigV4" in body


def test_the_aws_cli_signed_with_the_token_is_accepted_and_a_wrong_one_refused(front):
    cli = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    assert cli, "the AWS CLI (awscli, a test dependency) is not installed"

    def aws(secret):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="runner", AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_MAX_ATTEMPTS="1")
        return subprocess.run([cli, "--endpoint-url", f"http://127.0.0.1:{front.port}",
                               "--output", "json", "lambda", "list-functions"],
                              capture_output=True, text=True, env=env, timeout=60)

    ok = aws(TOKEN)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Functions"] == []
    refused = aws("wrong")
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr
