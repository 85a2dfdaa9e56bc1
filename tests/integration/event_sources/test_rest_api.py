"""Lambda's event source mapping REST API, driven by boto3 (issue 18)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client import generate_latest

from runner.service.http import HttpFront
from tests.integration.event_sources.helpers import deploy, wait_processed


@pytest.fixture
def lam(sources):
    """The HTTP front with the event source mapping API mounted, as `serve --http-port` does."""
    runner, es, rec = sources
    front = HttpFront(runner, "127.0.0.1", 0, grace=1, sources=es)
    front.start()
    client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{front.port}",
                          region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}))
    yield runner, es, rec, client
    client.close()
    front.stop()


def test_boto3_create_get_list_update_delete(redis, lam):
    import redis as redis_client

    runner, es, rec, client = lam
    deploy(runner, rec)
    created = client.create_event_source_mapping(
        EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/orders", FunctionName="rec",
        SelfManagedEventSource={"Endpoints": {"URL": [redis.url]}}, StartingPosition="TRIM_HORIZON",
        BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"], BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=2, ParallelizationFactor=2,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"n": [{"numeric": ["<", 100]}]}})}]},
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:kinesis:us-east-1:000000000000:stream/dead"}})
    uuid = created["UUID"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["BatchSize"] == 10 and created["State"] == "Enabled"
    assert created["FunctionArn"].endswith(":function:rec")
    r = redis_client.Redis.from_url(redis.url)
    r.xadd("orders", {"data": json.dumps({"n": 1})})
    r.close()
    wait_processed(rec, 1)
    # Each batch is counted on the runner's metrics (runner_source_*).
    text = generate_latest(runner.metrics.registry).decode()
    assert any(ln.startswith("runner_source_records_total") and uuid in ln and ln.endswith(" 1.0")
               for ln in text.splitlines())
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["EventSourceArn"].endswith(":stream/orders") and got["ParallelizationFactor"] == 2
    listed = client.list_event_source_mappings(FunctionName="rec")["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]
    elsewhere = "arn:aws:kinesis:us-east-1:000000000000:stream/elsewhere"
    assert client.list_event_source_mappings(EventSourceArn=elsewhere)["EventSourceMappings"] == []
    updated = client.update_event_source_mapping(UUID=uuid, BatchSize=5, Enabled=False)
    assert updated["BatchSize"] == 5 and updated["State"] == "Disabled"
    deleted = client.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    with pytest.raises(ClientError) as exc:
        client.get_event_source_mapping(UUID=uuid)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_boto3_sees_lambda_errors(redis, lam):
    runner, es, rec, client = lam
    deploy(runner, rec)
    with pytest.raises(ClientError) as exc:
        client.create_event_source_mapping(
            EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/s", FunctionName="rec",
            SelfManagedEventSource={"Endpoints": {"URL": [redis.url]}}, BatchSize=20000)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "batch_size" in exc.value.response["Error"]["Message"]
