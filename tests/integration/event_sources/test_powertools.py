"""Delivered events parse with aws-lambda-powertools' data classes (KinesisStreamEvent,
SQSEvent, DynamoDBStreamEvent) inside a deployed function that bundles powertools (issue 18)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import psycopg

from runner.invocation.runner import zip_directory
from tests.async_helpers import wait_for
from tests.integration.event_sources.helpers import HERE

GUEST = os.path.join(HERE, "guests", "powertools_reader")


def bundle(tmp_path) -> bytes:
    """The guest with powertools and its pure-Python dependencies copied beside it (botocore
    is optional for the data classes and left out)."""
    import aws_lambda_powertools
    import jmespath
    import typing_extensions

    out = tmp_path / "bundle"
    shutil.copytree(GUEST, out)
    for mod in (aws_lambda_powertools, jmespath):
        src = os.path.dirname(mod.__file__)
        shutil.copytree(src, out / os.path.basename(src), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(typing_extensions.__file__, out)
    return zip_directory(str(out))


def lines(rec_dir):
    path = os.path.join(rec_dir, "pt.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_powertools_parses_all_three_shapes(redis, nats, postgres, sources, tmp_path):
    import nats as nats_client
    import redis as redis_client

    runner, es, rec = sources
    runner.deploy("pt", bundle(tmp_path), runtime="python", handler="app.handler",
                  environment={"RECORD_DIR": rec}, memory_mb=256, timeout_s=30)
    with psycopg.connect(postgres.url, autocommit=True) as db:
        db.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")

    async def stream():
        nc = await nats_client.connect(nats.url)
        await nc.jetstream().add_stream(name="Q", subjects=["q"])
        await nc.close()

    asyncio.run(stream())
    for kind, url, name in (("redis-stream", redis.url, "s"), ("nats-jetstream", nats.url, "q"),
                            ("postgres-table", postgres.url, "items")):
        es.create(function="pt", source_type=kind, endpoint=url, name=name, starting_position="TRIM_HORIZON")
    r = redis_client.Redis.from_url(redis.url)
    r.xadd("s", {"data": json.dumps({"hello": "kinesis"}), "partitionKey": "pk"})
    r.close()

    async def publish():
        nc = await nats_client.connect(nats.url)
        await nc.jetstream().publish("q", json.dumps({"hello": "sqs"}).encode())
        await nc.close()

    asyncio.run(publish())
    with psycopg.connect(postgres.url, autocommit=True) as db:
        wait_for(lambda: db.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'runner_capture'").fetchone(),
                 "the capture trigger")
        db.execute("INSERT INTO items VALUES (7, 'ddb')")
    got = wait_for(lambda: len(g := lines(rec)) >= 3 and g, "three parsed records", timeout=90)
    by_kind = {g["kind"]: g for g in got}
    assert by_kind["kinesis"]["data"] == {"hello": "kinesis"} and by_kind["kinesis"]["key"] == "pk"
    assert by_kind["sqs"]["data"] == {"hello": "sqs"} and by_kind["sqs"]["receives"] == "1"
    assert by_kind["sqs"]["arn"].startswith("arn:aws:sqs:")
    assert by_kind["dynamodb"]["event"] == "INSERT"
    assert by_kind["dynamodb"]["keys"] == {"id": "7"} and by_kind["dynamodb"]["new"]["label"] == "ddb"
