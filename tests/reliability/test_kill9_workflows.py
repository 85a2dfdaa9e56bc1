"""kill -9 of `runner serve` while Standard workflow executions wait, retry and invoke: a new
server on the same data directory resumes every one, and each finishes with the right output.

Each execution runs First (a task) -> Pause (Wait 1 s) -> Flaky (a task that fails on its first
attempt and is retried after 1 s) -> Last (a task). The recorder guest logs every invocation,
so the test can check that only a task in flight at the crash ran twice: per execution, at
most one invocation more than a crash-free run makes. Short form: 20 executions; --long: 100.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import boto3
import pytest
from botocore.config import Config

from runner.invocation.runner import zip_directory
from tests.async_helpers import RECORDER, WAIT_S, records
from tests.integration.conftest import Client
from tests.reliability.conftest import Server

pytestmark = pytest.mark.usefixtures("guests_see_host_files")

THROTTLED = {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1,
             "MaxAttempts": 20, "BackoffRate": 1.2, "MaxDelaySeconds": 3, "JitterStrategy": "FULL"}


def task(step: str, nxt: str | None, **params) -> dict:
    s = {"Type": "Task", "Resource": "rec", "ResultPath": None, "Retry": [THROTTLED],
         "Parameters": {"n.$": "$.n", "step": step, **params}}
    s.update({"Next": nxt} if nxt else {"End": True})
    return s


DEFINITION = {"StartAt": "First", "States": {
    "First": task("first", "Pause"),
    "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Flaky"},
    # Fails while $$.State.RetryCount is 0: the first attempt only.
    "Flaky": {**task("flaky", "Last", **{
        "fail.$": "States.ArrayContains(States.Array(0), $$.State.RetryCount)"}),
        "Retry": [{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1, "MaxAttempts": 2},
                  THROTTLED]},
    "Last": task("last", None),
}}


def sfn_client(port: int):
    return boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}",
                        region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=60,
                                      inject_host_prefix=False))


def test_kill9_resumes_every_execution(tmp_path, long_run):
    count = 100 if long_run else 20
    data_dir, rec_dir = str(tmp_path / "data"), tmp_path / "records"
    rec_dir.mkdir()
    first = Server(data_dir, str(tmp_path / "server.log"))
    try:
        client = Client(first.grpc_address)
        client.deploy("rec", zip_directory(RECORDER), runtime="python", handler="app.handler",
                      environment={"RECORD_DIR": str(rec_dir)}, concurrency=10)
        client.close()
        sfn = sfn_client(first.http_port)
        arn = sfn.create_state_machine(name="steps", definition=json.dumps(DEFINITION),
                                       roleArn="r")["stateMachineArn"]
        arns = [sfn.start_execution(stateMachineArn=arn, name=f"e{n}",
                                    input=json.dumps({"n": n}))["executionArn"]
                for n in range(count)]
        time.sleep(1.5)  # executions are now waiting, retrying or invoking
        first.kill9()
        first.proc.wait()
    finally:
        first.stop()
    statuses_at_kill = Counter(r[1]["step"] for r in records(str(rec_dir), "rec"))
    second = Server(data_dir, str(tmp_path / "server2.log"))
    try:
        sfn = sfn_client(second.http_port)
        deadline = time.monotonic() + WAIT_S
        pending = set(arns)
        while pending and time.monotonic() < deadline:
            for a in list(pending):
                if sfn.describe_execution(executionArn=a)["status"] != "RUNNING":
                    pending.discard(a)
            time.sleep(0.2)
        assert not pending, f"{len(pending)} executions never finished"
        with open(tmp_path / "server2.log") as f:
            assert "resumed" in f.read()  # the kill landed while executions were running
        for n, a in enumerate(arns):
            d = sfn.describe_execution(executionArn=a)
            assert d["status"] == "SUCCEEDED", (d, statuses_at_kill)
            assert json.loads(d["output"]) == {"n": n}
            types = [e["type"] for e in sfn.get_execution_history(executionArn=a)["events"]]
            assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    finally:
        second.stop()
    per = Counter((ev["n"], ev["step"], bool(ev.get("fail")))
                  for _, ev in records(str(rec_dir), "rec"))
    for n in range(count):
        # A crash-free run: first 1; flaky fails once (none if a throttled attempt used up
        # RetryCount 0) and succeeds once; last 1.
        ok = [per[(n, step, False)] for step in ("first", "flaky", "last")]
        assert min(ok) >= 1, (n, per)
        extra = sum(ok) - 3 + max(0, per[(n, "flaky", True)] - 1)
        assert extra <= 1, f"execution {n} ran {extra} tasks again after the crash"
