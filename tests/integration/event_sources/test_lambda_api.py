"""Event source mappings through Lambda's REST API with boto3 (issue 18 x issue 20): the
mapping boto3 creates is the one the pollers run, and the one `runner source` would show."""

from __future__ import annotations

import json

import boto3
import pytest
import redis as redis_client
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client import generate_latest

from runner.service.http import HttpFront
from tests.integration.event_sources.helpers import deploy, wait_processed


@pytest.fixture
def lam(sources):
    runner, es, rec = sources
    front = HttpFront(runner, "127.0.0.1", 0, sources=es)
    front.start()
    client = boto3.client(
        "lambda", endpoint_url=f"http://127.0.0.1:{front.port}", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    yield client, runner, es, rec
    client.close()
    front.stop()


def test_boto3_mapping_life_cycle_runs_records(redis, lam):
    client, runner, es, rec = lam
    deploy(runner, rec)
    made = client.create_event_source_mapping(
        FunctionName="rec", EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/orders",
        SelfManagedEventSource={"Endpoints": {"URL": [redis.url]}}, BatchSize=4,
        StartingPosition="TRIM_HORIZON", FunctionResponseTypes=["ReportBatchItemFailures"])
    uuid = made["UUID"]
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert made["BatchSize"] == 4 and made["FunctionArn"].endswith(":function:rec")
    assert es.get(uuid).batch_size == 4  # the manager's own mapping

    r = redis_client.Redis.from_url(redis.url)
    for i in range(6):
        r.xadd("orders", {"data": json.dumps({"n": i}), "partitionKey": "k"})
    r.close()
    wait_processed(rec, 6)

    # Each batch is counted on the runner's metrics (runner_source_*).
    text = generate_latest(runner.metrics.registry).decode()
    records = [ln for ln in text.splitlines()
               if ln.startswith("runner_source_records_total") and uuid in ln]
    assert records and float(records[0].split()[-1]) >= 6

    got = client.get_event_source_mapping(UUID=uuid)
    assert got["EventSourceArn"] == "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    listed = client.list_event_source_mappings(FunctionName="rec")["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]
    other = client.list_event_source_mappings(
        EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/elsewhere")
    assert other["EventSourceMappings"] == []

    updated = client.update_event_source_mapping(UUID=uuid, BatchSize=9, Enabled=False)
    assert updated["BatchSize"] == 9 and es.get(uuid).batch_size == 9
    assert es.get(uuid).enabled is False

    deleted = client.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    with pytest.raises(ClientError) as err:
        client.get_event_source_mapping(UUID=uuid)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_bad_mapping_names_the_field(redis, lam):
    client, runner, es, rec = lam
    deploy(runner, rec)
    with pytest.raises(ClientError) as err:
        client.create_event_source_mapping(
            FunctionName="rec", EventSourceArn="arn:aws:s3:::bucket",
            SelfManagedEventSource={"Endpoints": {"URL": [redis.url]}})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "EventSourceArn" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        client.create_event_source_mapping(
            FunctionName="missing", EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/s",
            SelfManagedEventSource={"Endpoints": {"URL": [redis.url]}})
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert es.list() == []
