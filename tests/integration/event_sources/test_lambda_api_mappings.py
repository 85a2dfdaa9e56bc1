"""Event source mappings through Lambda's REST API with boto3 (issue 20): create, get, list
(by function, paginated), update, delete, over the server's EventSources with a real Redis;
a record pushed to the stream reaches the function."""

from __future__ import annotations

import json

import boto3
import pytest
import redis as redis_client
from botocore.config import Config

from runner.service.http import HttpFront
from tests.integration.event_sources.helpers import deploy, wait_processed


@pytest.fixture
def lam(sources):
    runner, es, rec = sources
    front = HttpFront(runner, "127.0.0.1", 0, sources=es)
    front.start()
    client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{front.port}",
                          region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x",
                          config=Config(retries={"total_max_attempts": 1}))
    yield client, runner, rec
    client.close()
    front.stop()


def test_mapping_life_cycle(redis, lam):
    client, runner, rec = lam
    deploy(runner, rec)
    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    m = client.create_event_source_mapping(
        FunctionName="rec", EventSourceArn=arn, StartingPosition="TRIM_HORIZON", BatchSize=10,
        SelfManagedEventSource={"Endpoints": {"URL": [redis.url]}})
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = m["UUID"]
    assert m["EventSourceArn"] == arn and m["BatchSize"] == 10
    r = redis_client.Redis.from_url(redis.url)
    r.xadd("orders", {"data": json.dumps({"n": 1}), "partitionKey": "k1"})
    r.close()
    wait_processed(rec, 1)
    assert client.get_event_source_mapping(UUID=uuid)["UUID"] == uuid
    listed = client.list_event_source_mappings(FunctionName="rec")["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid]
    assert client.list_event_source_mappings(FunctionName="other")["EventSourceMappings"] == []
    up = client.update_event_source_mapping(UUID=uuid, BatchSize=5)
    assert up["BatchSize"] == 5
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.update_event_source_mapping(UUID=uuid, KMSKeyArn="arn:aws:kms:x")
    client.delete_event_source_mapping(UUID=uuid)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_event_source_mapping(UUID=uuid)
