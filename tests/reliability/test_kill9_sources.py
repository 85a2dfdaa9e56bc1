"""Event source mappings survive kill -9 of `runner serve` (issue 18's acceptance test).

Records with 1% poison go into a Redis stream (bisect on error, ParallelizationFactor 4,
keys spread over 8 partition keys) and a JetStream subject (ReportBatchItemFailures); the
server is killed with SIGKILL three times while they are processed and restarted on the same
data directory each time. Then:

* 0 good records lost (each processed at least once);
* duplicates <= batch size x restarts, per mapping;
* every poison record at its dead-letter stream / subject, after MaximumRetryAttempts;
* 0 per-key ordering inversions on the stream (first processing of each record, per key).

`make test` runs 1,000 records per broker; `make test-long` (--long) the issue's 10,000.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter, defaultdict

import pytest

from runner.invocation.runner import zip_directory
from runner.service.proto import event_sources_pb2 as es_pb
from runner.service.proto import event_sources_pb2_grpc as es_grpc
from runner.sources.lambda_shape import settings_to_lambda
from tests.async_helpers import wait_for
from tests.integration.conftest import Client
from tests.integration.event_sources.helpers import BATCH_RECORDER, processed
from tests.real_servers import nats, redis  # noqa: F401
from tests.reliability.conftest import Server

pytestmark = pytest.mark.usefixtures("guests_see_host_files")
BATCH = 10
RESTARTS = 3
KEYS = 8


def poison(i: int) -> bool:
    return i % 100 == 37


def test_kill9_three_times_loses_no_record(redis, nats, tmp_path, long_run):  # noqa: F811
    import nats as nats_client
    import redis as redis_client

    total = 10_000 if long_run else 1_000
    rec = tmp_path / "records"
    rec.mkdir()
    data_dir, log_path = str(tmp_path / "data"), str(tmp_path / "server.log")
    server = Server(data_dir, log_path)
    client = Client(server.grpc_address)
    try:
        code = zip_directory(BATCH_RECORDER)
        client.deploy("rs", code, runtime="python", handler="app.handler", concurrency=20,
                      environment={"RECORD_DIR": str(rec)})
        client.deploy("js", code, runtime="python", handler="app.handler", concurrency=20,
                      environment={"RECORD_DIR": str(rec), "MODE": "items"})

        async def stream():
            nc = await nats_client.connect(nats.url)
            await nc.jetstream().add_stream(name="JOBS", subjects=["jobs"])
            await nc.close()

        asyncio.run(stream())
        stub = es_grpc.EventSourcesStub(client.channel)
        common = dict(starting_position="TRIM_HORIZON", batch_size=BATCH, max_retries=1)
        stub.Create(es_pb.CreateMappingRequest(lambda_json=json.dumps(settings_to_lambda(dict(
            function="rs", source_type="redis-stream", endpoint=redis.url, name="orders", bisect_on_error=True,
            parallelization=4, on_failure="stream:orders-dead", **common)))))
        stub.Create(es_pb.CreateMappingRequest(lambda_json=json.dumps(settings_to_lambda(dict(
            function="js", source_type="nats-jetstream", endpoint=nats.url, name="jobs",
            report_batch_item_failures=True, on_failure="subject:jobs-dead", **common)))))
    finally:
        client.close()

    r = redis_client.Redis.from_url(redis.url)
    pipe = r.pipeline(transaction=False)
    for i in range(total):
        pipe.xadd("orders", {"data": json.dumps({"n": i, "poison": poison(i)}), "partitionKey": f"k{i % KEYS}"})
    pipe.execute()

    async def publish():
        nc = await nats_client.connect(nats.url)
        js = nc.jetstream()
        for i in range(total):
            await js.publish("jobs", json.dumps({"n": i, "poison": poison(i), "key": f"k{i % KEYS}"}).encode())
        await nc.close()

    asyncio.run(publish())

    def done(name):
        return len({n for _, _, n in processed(str(rec), name)})

    good = total - sum(poison(i) for i in range(total))
    at_kill: list[tuple[int, int]] = []  # records done by each mapping when the kill landed
    try:
        for k in range(RESTARTS):
            target = good * (k + 1) // (RESTARTS + 1)
            wait_for(lambda: done("rs") >= target or done("js") >= target, f"{target} records processed",
                     timeout=120)
            server.kill9()
            at_kill.append((done("rs"), done("js")))
            server.proc.wait()
            assert server.proc.returncode == -signal.SIGKILL
            server.stop()
            server = Server(data_dir, log_path)
        wait_for(lambda: done("rs") >= good and done("js") >= good, "every good record processed",
                 timeout=300 if long_run else 120)

        def dead_redis():
            return [json.loads(base64_data(d)) for _, d in r.xrange("orders-dead")]

        poisoned = {i for i in range(total) if poison(i)}
        wait_for(lambda: {n for doc in dead_redis() for n in doc_ns(doc)} >= poisoned, "poison in orders-dead")
        dead_js = wait_for(lambda: (d := asyncio.run(read_subject(nats.url, "jobs-dead", len(poisoned))))
                           and {n for doc in d for n in doc_ns(doc)} >= poisoned and d, "poison in jobs-dead")
    finally:
        server.stop()
        r.close()
    assert server.proc.returncode == 0  # SIGTERM: the pollers stopped cleanly, then the server

    for name in ("rs", "js"):
        lines = processed(str(rec), name)
        counts = Counter(n for _, _, n in lines)
        assert set(counts) == {str(i) for i in range(total) if not poison(i)}, f"{name}: lost or poison processed"
        duplicates = sum(counts.values()) - len(counts)
        print(f"{name}: {len(counts)} records, {duplicates} duplicates, done at each kill {at_kill}")
        assert duplicates <= BATCH * RESTARTS, f"{name}: {duplicates} duplicates"
    # Per-key order on the stream: the first processing of each record, per key, ascends.
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for _, key, n in processed(str(rec), "rs"):
        if n not in seen:
            seen.add(n)
            first_seen[key].append(int(n))
    inversions = sum(1 for ns in first_seen.values() for a, b in zip(ns, ns[1:]) if b < a)
    assert inversions == 0
    # Each poison record's failure record says why and how often it was tried.
    for doc in dead_js:
        assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert os.path.exists(log_path)


def base64_data(fields) -> bytes:
    return fields[b"data"]


def doc_ns(doc) -> list[int]:
    import base64

    out = []
    for rec in doc["records"]:
        body = base64.b64decode(rec["kinesis"]["data"]) if "kinesis" in rec else rec["body"]
        out.append(json.loads(body)["n"])
    return out


async def read_subject(url, subject, at_least):
    import nats as nats_client

    nc = await nats_client.connect(url)
    js = nc.jetstream()
    name = await js.find_stream_name_by_subject(subject)
    info = await js.stream_info(name)
    docs = []
    for seq in range(1, info.state.last_seq + 1):
        msg = await js.get_msg(name, seq)
        docs.append(json.loads(msg.data))
    await nc.close()
    return docs
