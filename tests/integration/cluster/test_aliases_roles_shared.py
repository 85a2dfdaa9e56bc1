"""Aliases and execution roles on the shared state (issue 23, decision 076): two nodes on one
PostgreSQL, each a Runner with its HTTP front, driven by boto3's own Lambda client. An alias
created through node A is invoked through node B; weights set through B route A's calls; a
function deleted through B takes its aliases with it; a role rotated through A reaches the
environments B starts. Real sandboxed Python environments."""

from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import pytest
from botocore.config import Config

from tests.integration.cluster.conftest import http_nodes
from tests.state_fixtures import fresh_database

SEEN_WITHIN_S = 2.0  # the bound for a write on one node to be seen on another
ENV = b"""import os
def handler(event, context):
    return {"v": VERSION, "key": os.environ.get("AWS_ACCESS_KEY_ID")}
"""


def code(version: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", ENV.replace(b"VERSION", str(version).encode()))
    return buf.getvalue()


@pytest.fixture
def nodes(pg_server, tmp_path):
    """[(runner, boto3 client)] for two nodes sharing one fresh database."""
    with http_nodes(fresh_database(pg_server), tmp_path, 2) as started:
        clients = [boto3.client(
            "lambda", endpoint_url=f"http://127.0.0.1:{front.port}", region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
            for _, front, _ in started]
        yield [(runner, client) for (runner, _, _), client in zip(started, clients)]
        for client in clients:
            client.close()


def eventually(check, what: str):
    """`check()`'s value once it is truthy. Fails when a check begun more than SEEN_WITHIN_S
    after the call still is not: an invocation's own time (a cold start on a loaded host)
    does not count against the bound, only when its read happened."""
    deadline = time.monotonic() + SEEN_WITHIN_S
    while True:
        started = time.monotonic()
        value = check()
        if value:
            return value
        assert started < deadline, f"not seen within {SEEN_WITHIN_S} s: {what}"
        time.sleep(0.05)


def invoke(lam, qualifier: str):
    resp = lam.invoke(FunctionName="fn", Qualifier=qualifier, Payload=b"{}")
    assert "FunctionError" not in resp, resp["Payload"].read()
    return resp["ExecutedVersion"], json.loads(resp["Payload"].read())


def test_aliases_through_boto3_on_two_nodes(nodes):
    (_, lam_a), (_, lam_b) = nodes
    lam_a.create_function(FunctionName="fn", Runtime="python3.12", Handler="app.handler",
                          Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": code(1)},
                          Publish=True)
    lam_a.update_function_code(FunctionName="fn", ZipFile=code(2), Publish=True)
    alias = lam_a.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert alias["AliasArn"].endswith(":function:fn:live")
    assert invoke(lam_b, "live") == ("1", {"v": 1, "key": None})
    assert lam_b.get_alias(FunctionName="fn", Name="live")["RevisionId"] == alias["RevisionId"]

    up = lam_b.update_alias(FunctionName="fn", Name="live", FunctionVersion="2",
                            RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
                            RevisionId=alias["RevisionId"])
    assert up["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.5}}
    with pytest.raises(lam_a.exceptions.PreconditionFailedException):  # the old revision
        lam_a.update_alias(FunctionName="fn", Name="live", RevisionId=alias["RevisionId"])
    eventually(lambda: invoke(lam_a, "live")[0] == "2", "the alias's new version on node A")
    seen = {invoke(lam_a, "live")[0] for _ in range(40)}
    assert seen == {"1", "2"}  # 2**-39 chance of a false failure
    with pytest.raises(lam_a.exceptions.ResourceConflictException):  # in use by the alias
        lam_a.delete_function(FunctionName="fn", Qualifier="1")

    lam_b.delete_function(FunctionName="fn")
    with pytest.raises(lam_a.exceptions.ResourceNotFoundException):
        lam_a.get_alias(FunctionName="fn", Name="live")

    def gone():
        try:
            invoke(lam_a, "live")
        except lam_a.exceptions.ResourceNotFoundException:
            return True
        return False

    eventually(gone, "the function's delete on node A")
    lam_a.create_function(FunctionName="fn", Runtime="python3.12", Handler="app.handler",
                          Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": code(3)},
                          Publish=True)
    assert lam_b.list_aliases(FunctionName="fn")["Aliases"] == []  # none outlived it


def test_a_role_rotated_through_one_node_reaches_the_others_environments(nodes):
    (runner_a, lam_a), (runner_b, lam_b) = nodes
    runner_a.create_role("r", "AKIA-ONE", "secret-one")
    lam_a.create_function(FunctionName="fn", Runtime="python3.12", Handler="app.handler",
                          Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": code(1)},
                          Publish=True)
    assert invoke(lam_b, "1")[1]["key"] == "AKIA-ONE"
    assert [r.name for r in runner_b.list_roles()] == ["r"]
    runner_a.update_role("r", access_key_id="AKIA-TWO")
    eventually(lambda: invoke(lam_b, "1")[1]["key"] == "AKIA-TWO", "the rotated role on node B")
    assert runner_b.get_role("r").generation == 2
    runner_b.delete_role("r")
    eventually(lambda: invoke(lam_a, "$LATEST")[1]["key"] is None, "the role's delete on node A")
