"""The AWS CLI, unchanged, runs a function's management life cycle against `runner serve
--http-port 0 --region eu-west-1` (issue 20): create, list, update code, publish, alias,
invoke through the alias, delete. The region set on the server is the one in every ARN."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from runner.invocation.code_input import zip_directory
from tests.conftest import guest

AWS = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed (pip: awscli)")


@pytest.fixture
def endpoint(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", "0", "--http-port", "0", "--region", "eu-west-1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, lines = None, []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"http listening on (\S+:\d+)", line)
        if m:
            url = f"http://{m.group(1)}"
            break
    assert url, "server did not start:\n" + "".join(lines)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    proc.stdout.close()


def aws(endpoint: str, *args: str) -> dict:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="eu-west-1", AWS_PAGER="", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    out = subprocess.run([AWS, "--endpoint-url", endpoint, "--output", "json", "lambda", *args],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


def test_aws_cli_life_cycle(endpoint, tmp_path):
    z1 = tmp_path / "v1.zip"
    z1.write_bytes(zip_directory(guest("python", "echo")))
    z2 = tmp_path / "v2.zip"
    z2.write_bytes(zip_directory(guest("python", "hello")))
    fn = aws(endpoint, "create-function", "--function-name", "cli-fn", "--runtime", "python3.12",
             "--role", "arn:aws:iam::000000000000:role/r", "--handler", "app.handler",
             "--zip-file", f"fileb://{z1}")
    assert fn["FunctionArn"] == "arn:aws:lambda:eu-west-1:000000000000:function:cli-fn"
    listed = aws(endpoint, "list-functions")
    assert [f["FunctionName"] for f in listed["Functions"]] == ["cli-fn"]
    v1 = aws(endpoint, "publish-version", "--function-name", "cli-fn")
    assert v1["Version"] == "1"
    up = aws(endpoint, "update-function-code", "--function-name", "cli-fn", "--zip-file",
             f"fileb://{z2}", "--publish")
    assert up["Version"] == "2" and up["CodeSha256"] != fn["CodeSha256"]
    alias = aws(endpoint, "create-alias", "--function-name", "cli-fn", "--name", "live",
                "--function-version", "1")
    assert alias["AliasArn"].endswith(":function:cli-fn:live")
    out = tmp_path / "out.json"
    res = aws(endpoint, "invoke", "--function-name", "cli-fn", "--qualifier", "live",
              "--payload", '{"k": "v"}', str(out))
    assert res["ExecutedVersion"] == "1" and json.loads(out.read_text()) == {"k": "v"}
    aws(endpoint, "delete-function", "--function-name", "cli-fn")
    assert aws(endpoint, "list-functions")["Functions"] == []
