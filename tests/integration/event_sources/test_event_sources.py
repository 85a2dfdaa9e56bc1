"""Event source mappings against real Redis, NATS JetStream and PostgreSQL servers (issue 18).

Each test starts its broker on a free loopback port (tests/real_servers.py), deploys the batch
recorder guest in an embedded Runner with EventSources running, and checks what the handler
saw and what reached the failure destination.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter

import psycopg
import pytest
import redis as redis_client

from runner.errors import InvalidParameter, ResourceNotFound
from tests.async_helpers import wait_for
from tests.integration.event_sources.helpers import deploy, processed, wait_processed


def xadd(url, stream, items):
    r = redis_client.Redis.from_url(url)
    try:
        return [r.xadd(stream, fields) for fields in items]
    finally:
        r.close()


# ---------------------------------------------------------------------------- Redis Streams


def test_redis_records_arrive_in_kinesis_shape_in_order(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec, DUMP="1")
    m = es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="orders",
                  starting_position="TRIM_HORIZON", batch_size=10)
    xadd(redis.url, "orders", [{"data": json.dumps({"n": i}), "partitionKey": f"k{i % 3}"} for i in range(25)]
         + [{"data": b"\xff\xfe not utf-8", "partitionKey": "bin"}])
    got = wait_processed(rec, 26)
    assert [int(n) for _, _, n in got if n != "None"] == list(range(25))
    with open(f"{rec}/rec.events") as f:
        event = json.loads(f.readline())
    r0 = event["Records"][0]
    assert r0["eventSource"] == "aws:kinesis" and r0["eventName"] == "aws:kinesis:record"
    assert r0["eventSourceARN"].endswith(":stream/orders")
    assert r0["kinesis"]["partitionKey"] == "k0" and json.loads(base64.b64decode(r0["kinesis"]["data"])) == {"n": 0}
    assert isinstance(r0["kinesis"]["approximateArrivalTimestamp"], float)
    assert len(event["Records"]) <= 10
    # Not UTF-8: base64 data carries the exact bytes.
    binary = [line for line in processed(rec) if line[1] == "bin"]
    assert binary and binary[0][2] == "None"
    status = wait_for(lambda: (s := es.status(m.uuid))["stats"].get("processed") == 26 and s, "stats")
    assert status["mapping"].last_result == "OK"
    assert status["stats"]["iterator_age_ms"] >= 0


def test_redis_poison_is_bisected_and_dead_lettered_on_the_broker(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)  # MODE=raise: a poison record fails its whole batch
    es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
              starting_position="TRIM_HORIZON", batch_size=16, batching_window_s=0.5, bisect_on_error=True,
              max_retries=1, on_failure="stream:s-dead")
    xadd(redis.url, "s", [{"data": json.dumps({"n": i, "poison": i == 9}), "partitionKey": "one"}
                          for i in range(16)])
    got = wait_processed(rec, 15)
    assert sorted(int(n) for _, _, n in got) == [i for i in range(16) if i != 9]
    r = redis_client.Redis.from_url(redis.url)
    dead = wait_for(lambda: r.xrange("s-dead"), "the dead letter")
    r.close()
    doc = json.loads(dead[0][1][b"data"])
    assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert doc["KinesisBatchInfo"]["batchSize"] == 1
    assert json.loads(base64.b64decode(doc["records"][0]["kinesis"]["data"]))["n"] == 9


def test_redis_restart_mid_stream_loses_nothing(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    m = es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
                  starting_position="TRIM_HORIZON", batch_size=20)
    xadd(redis.url, "s", [{"data": json.dumps({"n": i})} for i in range(100)])
    wait_processed(rec, 1)
    redis.restart()  # appendfsync always: every XADD above survives
    xadd(redis.url, "s", [{"data": json.dumps({"n": i})} for i in range(100, 200)])
    got = wait_processed(rec, 200)
    assert {int(n) for _, _, n in got} == set(range(200))
    assert es.get(m.uuid).state == "Enabled"


def test_unreachable_broker_is_reported_and_retried(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    redis.stop()
    m = es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
                  starting_position="TRIM_HORIZON")
    wait_for(lambda: es.get(m.uuid).last_result.startswith("PROBLEM: Connection error"), "the problem noted")
    assert runner.invoke("rec", json.dumps({"Records": []})).function_error is None  # still serving
    redis.start()
    xadd(redis.url, "s", [{"data": json.dumps({"n": 1})}])
    wait_processed(rec, 1)
    wait_for(lambda: es.get(m.uuid).last_result == "OK", "the mapping recovered")


def test_update_disable_enable_and_delete_take_effect_without_restart(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    m = es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
                  starting_position="TRIM_HORIZON")
    xadd(redis.url, "s", [{"data": json.dumps({"n": 0})}])
    wait_processed(rec, 1)
    es.update(m.uuid, enabled=False)
    wait_for(lambda: not es.status(m.uuid)["running"], "the poller stopped")
    xadd(redis.url, "s", [{"data": json.dumps({"n": 1})}])
    time.sleep(1.0)
    assert len(processed(rec)) == 1  # disabled: nothing read
    es.update(m.uuid, enabled=True, batch_size=5)
    wait_processed(rec, 2)  # resumes from the group's position: the record sent meanwhile
    assert es.get(m.uuid).batch_size == 5
    es.delete(m.uuid)
    with pytest.raises(ResourceNotFound):
        es.get(m.uuid)


def test_bad_settings_and_unknown_functions_are_refused(redis, sources):
    runner, es, rec = sources
    with pytest.raises(ResourceNotFound):
        es.create(function="nope", source_type="redis-stream", endpoint=redis.url, name="s")
    deploy(runner, rec)
    with pytest.raises(InvalidParameter) as exc:
        es.create(function="rec", source_type="redis-stream", endpoint="redis://", name="s")
    assert exc.value.field == "endpoint"


def test_deleting_the_function_disables_its_mappings(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    m = es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
                  starting_position="TRIM_HORIZON")
    runner.delete("rec")
    got = wait_for(lambda: (g := es.get(m.uuid)).state == "Disabled" and g, "the mapping disabled")
    assert "deleted" in got.state_reason and not got.enabled  # with no record to find out
    # And a poller whose invocation finds the function gone stops without acknowledging.
    deploy(runner, rec)
    es.update(m.uuid, enabled=True)
    wait_for(lambda: es.status(m.uuid)["running"], "the poller running again")
    runner.delete("rec")
    xadd(redis.url, "s", [{"data": json.dumps({"n": 0})}])
    wait_for(lambda: es.get(m.uuid).state == "Disabled", "the mapping disabled again")
    r = redis_client.Redis.from_url(redis.url)
    group = r.xinfo_groups("s")[0]
    assert (group["entries-read"] or 0) == group["pending"]  # read or not, never acknowledged
    r.close()


# ---------------------------------------------------------------------------- NATS JetStream


async def _stream(url, name, subject):
    import nats as nats_client

    nc = await nats_client.connect(url)
    await nc.jetstream().add_stream(name=name, subjects=[subject])
    await nc.close()


async def _publish(url, subject, bodies, headers=None):
    import nats as nats_client

    nc = await nats_client.connect(url)
    js = nc.jetstream()
    for b in bodies:
        await js.publish(subject, b, headers=headers)
    await nc.close()


async def _read_all(url, subject):
    import nats as nats_client

    nc = await nats_client.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(subject, durable="test-reader")
    try:
        msgs = await sub.fetch(100, timeout=2)
    except Exception:
        msgs = []
    await nc.close()
    return [json.loads(m.data) for m in msgs]


def test_nats_sqs_shape_item_failures_and_dead_letters(nats, sources):
    runner, es, rec = sources
    deploy(runner, rec, MODE="items", DUMP="1")
    asyncio.run(_stream(nats.url, "ORDERS", "orders"))
    es.create(function="rec", source_type="nats-jetstream", endpoint=nats.url, name="orders",
              starting_position="TRIM_HORIZON", batch_size=10, report_batch_item_failures=True,
              max_retries=1, on_failure="subject:orders-dead")
    bodies = [json.dumps({"n": i, "poison": i in (3, 7)}).encode() for i in range(20)] + [b"\xff\x00"]
    asyncio.run(_publish(nats.url, "orders", bodies, headers={"origin": "test"}))
    got = wait_processed(rec, 19)
    assert sorted(int(n) for _, _, n in got if n != "None") == [i for i in range(20) if i not in (3, 7)]
    dead = wait_for(lambda: len(d := asyncio.run(_read_all(nats.url, "orders-dead"))) >= 1 and d, "dead letters")
    poisoned = sorted(json.loads(r["body"])["n"] for doc in dead for r in doc["records"])
    assert poisoned == [3, 7]
    with open(f"{rec}/rec.events") as f:
        events = [json.loads(line) for line in f]
    first = events[0]["Records"][0]
    assert first["eventSource"] == "aws:sqs" and first["attributes"]["ApproximateReceiveCount"] == "1"
    # Only the items named in batchItemFailures came again: each good record was delivered
    # once, each poison record 1 + MaximumRetryAttempts times.
    deliveries = Counter(r["messageId"] for e in events for r in e["Records"])
    by_n = {}
    for e in events:
        for r in e["Records"]:
            try:
                by_n[r["messageId"]] = json.loads(r["body"]).get("n")
            except ValueError:
                by_n[r["messageId"]] = None
    assert {by_n[m]: c for m, c in deliveries.items() if c != 1} == {3: 2, 7: 2}
    assert first["messageAttributes"]["origin"]["stringValue"] == "test"
    assert len(first["md5OfBody"]) == 32


W3C = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"


def test_a_trace_a_message_carries_reaches_the_batch_invocation(nats, redis, sources):
    """A `traceparent` NATS header (or Redis stream field) becomes the batch's trace: the
    REPORT line names it, and the SQS shape gives it as AWSTraceHeader, as Lambda does."""
    runner, es, rec = sources
    deploy(runner, rec, DUMP="1")
    asyncio.run(_stream(nats.url, "TRACED", "traced"))
    es.create(function="rec", source_type="nats-jetstream", endpoint=nats.url, name="traced",
              starting_position="TRIM_HORIZON", batch_size=10)
    asyncio.run(_publish(nats.url, "traced", [b'{"n": 0}'], headers={"traceparent": W3C}))
    wait_processed(rec, 1)
    with open(f"{rec}/rec.events") as f:
        first = json.loads(f.readline())["Records"][0]
    assert first["attributes"]["AWSTraceHeader"] == XRAY
    es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="traced",
              starting_position="TRIM_HORIZON", batch_size=10)
    xadd(redis.url, "traced", [{"data": '{"n": 1}', "X-Amzn-Trace-Id": XRAY.replace("4bf9", "5bf9")}])
    wait_processed(rec, 2)

    def traced():
        return {line.split("XRAY TraceId: ")[1].split()[0] for line in runner.read_logs("rec")
                if line.startswith("REPORT") and "XRAY TraceId: " in line}

    wait_for(lambda: len(traced()) >= 2, "two traced REPORT lines")
    assert traced() == {"1-4bf92f35-77b34da6a3ce929d0e0e4736", "1-5bf92f35-77b34da6a3ce929d0e0e4736"}


def test_nats_restart_mid_stream_loses_nothing(nats, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    asyncio.run(_stream(nats.url, "JOBS", "jobs"))
    es.create(function="rec", source_type="nats-jetstream", endpoint=nats.url, name="jobs",
              starting_position="TRIM_HORIZON", batch_size=10)
    asyncio.run(_publish(nats.url, "jobs", [json.dumps({"n": i}).encode() for i in range(50)]))
    wait_processed(rec, 1)
    nats.restart()
    asyncio.run(_publish(nats.url, "jobs", [json.dumps({"n": i}).encode() for i in range(50, 100)]))
    got = wait_processed(rec, 100, timeout=90)
    assert {int(n) for _, _, n in got} == set(range(100))


# ---------------------------------------------------------------------------- PostgreSQL


def test_postgres_changes_arrive_in_dynamodb_streams_shape(postgres, sources):
    runner, es, rec = sources
    deploy(runner, rec, DUMP="1")
    with psycopg.connect(postgres.url, autocommit=True) as db:
        db.execute("CREATE TABLE items (id int PRIMARY KEY, n int, label text, tags jsonb)")
        es.create(function="rec", source_type="postgres-table", endpoint=postgres.url, name="items",
                  starting_position="TRIM_HORIZON")
        # Installed by create() itself: changes right after it are captured.
        assert db.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'runner_capture'").fetchone()
        db.execute("INSERT INTO items VALUES (1, 10, 'a', '[1, \"x\"]'), (2, 20, 'b', null)")
        db.execute("UPDATE items SET n = 11 WHERE id = 1")
        db.execute("DELETE FROM items WHERE id = 2")
    got = wait_processed(rec, 4)
    assert [(kind, n) for _, kind, n in got] == [("INSERT", "10"), ("INSERT", "20"), ("MODIFY", "11"),
                                                 ("REMOVE", "20")]
    with open(f"{rec}/rec.events") as f:
        records = [r for line in f for r in json.loads(line)["Records"]]
    ins, mod = records[0], records[2]
    assert ins["eventSource"] == "aws:dynamodb" and ins["dynamodb"]["Keys"] == {"id": {"N": "1"}}
    assert ins["dynamodb"]["NewImage"]["tags"] == {"L": [{"N": "1"}, {"S": "x"}]}
    assert mod["dynamodb"]["OldImage"]["n"] == {"N": "10"} and mod["dynamodb"]["NewImage"]["n"] == {"N": "11"}
    assert mod["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_redis_at_timestamp_starts_there(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    xadd(redis.url, "s", [{"data": json.dumps({"n": 0})}])
    time.sleep(0.05)
    start = time.time()
    time.sleep(0.05)
    xadd(redis.url, "s", [{"data": json.dumps({"n": 1})}])
    es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
              starting_position="AT_TIMESTAMP", starting_timestamp=start)
    got = wait_processed(rec, 1)
    time.sleep(0.5)
    assert [n for _, _, n in processed(rec)] == ["1"] == [n for _, _, n in got]


def test_postgres_restart_and_a_new_poller_resume_from_the_checkpoint(postgres, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    with psycopg.connect(postgres.url, autocommit=True) as db:
        db.execute("CREATE TABLE t (id int PRIMARY KEY, n int)")
    m = es.create(function="rec", source_type="postgres-table", endpoint=postgres.url, name="t",
                  starting_position="TRIM_HORIZON", batch_size=7)

    def connect():
        try:  # just after a restart the server listens before it accepts ("starting up")
            return psycopg.connect(postgres.url, autocommit=True)
        except psycopg.OperationalError:
            return None

    def insert(lo, hi):
        with wait_for(connect, "postgres accepting connections") as db:
            wait_for(lambda: db.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'runner_capture'").fetchone(),
                     "the capture trigger")
            for i in range(lo, hi):
                db.execute("INSERT INTO t VALUES (%s, %s)", (i, i))

    insert(0, 30)
    wait_processed(rec, 1)
    postgres.kill()  # a crash (SIGTERM would wait for the poller's session to end: 10 s)
    postgres.start()
    insert(30, 60)
    wait_processed(rec, 60)
    es.update(m.uuid, enabled=False)  # a new poller later reads the stored checkpoint
    wait_for(lambda: not es.status(m.uuid)["running"], "the poller stopped")
    insert(60, 70)
    es.update(m.uuid, enabled=True)
    got = wait_processed(rec, 70)
    counts = Counter(int(n) for _, _, n in got)
    assert set(counts) == set(range(70))
    assert all(c == 1 for n, c in counts.items() if n >= 60)  # nothing before the checkpoint again


def test_a_throttled_function_slows_the_mapping_and_loses_nothing(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec, SLEEP="0.05")
    runner.deploy("rec", concurrency=1)  # four lanes, one environment: three are throttled
    m = es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s",
                  starting_position="TRIM_HORIZON", batch_size=8, parallelization=4)
    xadd(redis.url, "s", [{"data": json.dumps({"n": i}), "partitionKey": f"k{i % 8}"} for i in range(40)])
    got = wait_processed(rec, 40)
    assert sorted(int(n) for _, _, n in got) == list(range(40))
    stats = es.status(m.uuid)["stats"]
    assert stats["throttled"] > 0 and stats["dead_lettered"] == 0 and stats["failed_invocations"] == 0


def test_latest_means_from_the_mappings_creation(redis, sources):
    runner, es, rec = sources
    deploy(runner, rec)
    xadd(redis.url, "s", [{"data": json.dumps({"n": 0})}])  # before the mapping: not delivered
    time.sleep(0.01)
    es.create(function="rec", source_type="redis-stream", endpoint=redis.url, name="s")  # LATEST
    xadd(redis.url, "s", [{"data": json.dumps({"n": 1})}])  # at once, before the poller runs
    wait_processed(rec, 1)
    time.sleep(0.5)
    assert [n for _, _, n in processed(rec)] == ["1"]


def test_postgres_poison_goes_to_a_dead_letter_table(postgres, sources):
    runner, es, rec = sources
    deploy(runner, rec, MODE="items", ORDERED="1")
    with psycopg.connect(postgres.url, autocommit=True) as db:
        db.execute("CREATE TABLE jobs (id int PRIMARY KEY, n int, poison boolean)")
        es.create(function="rec", source_type="postgres-table", endpoint=postgres.url, name="jobs",
                  starting_position="TRIM_HORIZON", report_batch_item_failures=True, max_retries=1,
                  on_failure="table:jobs_dead")
        for i in range(10):
            db.execute("INSERT INTO jobs VALUES (%s, %s, %s)", (i, i, i == 4))
        got = wait_processed(rec, 9)
        assert sorted(int(n) for _, _, n in got) == [i for i in range(10) if i != 4]
        dead = wait_for(lambda: db.execute("SELECT record FROM jobs_dead").fetchall(), "the dead letter")
    doc = dead[0][0]
    assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert doc["records"][0]["dynamodb"]["NewImage"]["n"] == {"N": "4"}
    assert "DDBStreamBatchInfo" in doc
