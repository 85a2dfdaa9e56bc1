"""The poller's semantics against an in-memory source and a scripted function (issue 18).

The brokers themselves are exercised in tests/integration/test_event_sources.py; here each
Lambda rule (bisect, batchItemFailures, retries, age, destinations, filters, lanes, the 6 MB
split, throttling) is checked alone, with exact invocation counts.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time

import pytest

from runner.errors import ResourceNotFound, TooManyRequests
from runner.invocation_record import InvocationResult, Report
from runner.sources.base import Record
from runner.sources.poller import Poller
from runner.sources.shapes import kinesis_record, sqs_record
from runner.storage.mapping_model import Mapping
from runner.storage.mappings import SQLiteMappingStore


class MemorySource:
    def __init__(self, records, ordered=True, shape="kinesis"):
        self.records = list(records)
        self.ordered = ordered
        self.shape = shape
        self.acked: list[str] = []
        self.dead: list[tuple[str, dict]] = []

    def connect(self):
        pass

    def poll(self, n, wait_s):
        out, self.records = self.records[:n], self.records[n:]
        return out

    def ack(self, records):
        self.acked += [r.id for r in records]

    def keep_alive(self, records):
        pass

    def dead_letter(self, target, doc):
        self.dead.append((target, doc))

    def event(self, records):
        make = kinesis_record if self.shape == "kinesis" else sqs_record
        return {"Records": [make(r, "s") for r in records]}

    def item_id(self, r):
        return r.id

    def batch_info(self, records):
        return {"KinesisBatchInfo": {"startSequenceNumber": records[0].id, "batchSize": len(records)}}

    def close(self):
        pass


def rec(i, key=None, data=None, arrival=None):
    return Record(str(i), key or str(i), data if data is not None else json.dumps({"n": i}).encode(),
                  arrival if arrival is not None else time.time())


def ok(payload=b"null"):
    return InvocationResult("rid", payload, None, None, b"", Report("rid", 1, 1, 128, 1), "$LATEST")


def failed():
    err = {"errorMessage": "poison", "errorType": "Exception"}
    return InvocationResult("rid", json.dumps(err).encode(), "Unhandled", err, b"", Report("rid", 1, 1, 128, 1),
                            "$LATEST")


class Function:
    """Fails any batch holding a poison record (or names it, with item failures)."""

    def __init__(self, poison=(), report_items=False, throttle=0):
        self.poison = set(poison)
        self.report_items = report_items
        self.calls: list[list[int]] = []
        self.traces: list[str | None] = []
        self.throttle = throttle
        self.lock = threading.Lock()

    def __call__(self, name, body, qualifier, trace=None):
        self.traces.append(trace)
        if self.throttle:
            self.throttle -= 1
            raise TooManyRequests("reserved concurrency reached")
        event = json.loads(body)
        ns = [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] if "kinesis" in r
              else json.loads(r["body"])["n"] for r in event["Records"]]
        with self.lock:
            self.calls.append(ns)
        bad = [r for r, n in zip(event["Records"], ns) if n in self.poison]
        if not bad:
            return ok()
        if self.report_items:
            ids = [r["kinesis"]["sequenceNumber"] if "kinesis" in r else r["messageId"] for r in bad]
            return ok(json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in ids]}).encode())
        return failed()


@pytest.fixture
def store(tmp_path):
    s = SQLiteMappingStore(str(tmp_path))
    yield s
    s.close()


def poller(store, source, fn, forwarded=None, **settings):
    base = dict(function="f", source_type="redis-stream", endpoint="redis://127.0.0.1:1/0", name="s")
    base.update(settings)
    m = store.create(Mapping.create(**base))
    fwd = forwarded if forwarded is not None else []
    return Poller(m, source, store, fn, lambda name, doc: fwd.append((name, doc)))


def test_a_clean_batch_is_invoked_once_and_acknowledged_after(store):
    src = MemorySource([rec(i) for i in range(5)])
    fn = Function()
    p = poller(store, src, fn, batch_size=10)
    p.step()
    assert fn.calls == [[0, 1, 2, 3, 4]]
    assert src.acked == ["0", "1", "2", "3", "4"]
    assert p.stats.processed == 5


TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def test_a_batch_runs_under_the_trace_its_first_traced_record_carried(store):
    plain = [rec(i) for i in range(3)]
    plain[1].trace = TRACE
    src = MemorySource(plain + [rec(9)])
    fn = Function()
    poller(store, src, fn, batch_size=10).step()
    assert fn.traces == [TRACE]
    untraced = MemorySource([rec(i) for i in range(3)])
    fn2 = Function()
    poller(store, untraced, fn2, batch_size=10, name="t").step()
    assert fn2.traces == [None]  # no trace is made up for a batch that carried none


def test_the_sqs_shape_names_the_record_trace_as_lambda_does():
    traced = Record("1", "1", b"{}", time.time(), trace=TRACE)
    assert sqs_record(traced, "q")["attributes"]["AWSTraceHeader"] == TRACE
    assert "AWSTraceHeader" not in sqs_record(rec(2), "q")["attributes"]


@pytest.mark.parametrize("size,poison", [(8, 5), (16, 0), (100, 63), (7, 6)])
def test_bisect_isolates_a_poison_record_within_log2_plus_one_invocations(store, size, poison):
    src = MemorySource([rec(i) for i in range(size)])
    fn = Function(poison=[poison])
    fwd = []
    p = poller(store, src, fn, fwd, batch_size=size, bisect_on_error=True, max_retries=0,
               on_failure="function:dlq")
    p.step()
    # The invocations that held the poison record, the last one being it alone (with
    # max_retries 0 that lone failure is also its last).
    holding = [c for c in fn.calls if poison in c]
    assert len(holding) <= math.ceil(math.log2(size)) + 1
    assert holding[-1] == [poison]
    processed = sorted(n for c in fn.calls if poison not in c for n in c)
    assert processed == [i for i in range(size) if i != poison]  # each good record once
    assert [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for _, d in fwd for r in d["records"]] == [poison]
    assert fwd[0][1]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert sorted(src.acked, key=int) == [str(i) for i in range(size)]


def test_retries_then_the_destination_then_ack(store):
    src = MemorySource([rec(0), rec(1)])
    fn = Function(poison=[1])
    p = poller(store, src, fn, batch_size=2, max_retries=2, on_failure="stream:dead")
    p.step()
    assert fn.calls == [[0, 1]] * 3  # the first attempt and two retries of the whole batch
    assert [t for t, _ in src.dead] == ["stream:dead".split(":")[1]]
    doc = src.dead[0][1]
    assert doc["KinesisBatchInfo"]["batchSize"] == 2
    assert doc["requestContext"]["approximateInvokeCount"] == 3
    assert src.acked == ["0", "1"]
    assert store.attempts(p.m.uuid, ["0", "1"]) == {"0": 0, "1": 0}  # forgotten once settled


def test_ordered_item_failures_retry_from_the_first_named(store):
    src = MemorySource([rec(i) for i in range(5)])
    fn = Function(poison=[2], report_items=True)
    p = poller(store, src, fn, batch_size=5, max_retries=1, report_batch_item_failures=True)
    p.step()
    # From the first named item on; 2 alone is charged, given up after one retry, and the
    # records after it go on without it (never to the destination: they did not fail).
    assert fn.calls == [[0, 1, 2, 3, 4], [2, 3, 4], [3, 4]]
    assert p.stats.dead_lettered == 1 and p.stats.processed == 4


def test_unordered_item_failures_retry_only_those_named(store):
    src = MemorySource([rec(i) for i in range(5)], ordered=False, shape="sqs")
    fn = Function(poison=[1, 3], report_items=True)
    p = poller(store, src, fn, batch_size=5, max_retries=2, report_batch_item_failures=True,
               source_type="nats-jetstream", endpoint="nats://127.0.0.1:1", on_failure="subject:dlq")
    p.step()
    assert fn.calls == [[0, 1, 2, 3, 4], [1, 3], [1, 3]]
    assert len(src.dead) == 1 and len(src.dead[0][1]["records"]) == 2


def test_an_unknown_item_identifier_fails_the_whole_batch(store):
    src = MemorySource([rec(0), rec(1)])

    def fn(name, body, q, trace=None):
        fn.n += 1
        return ok(json.dumps({"batchItemFailures": [{"itemIdentifier": "nope"}]}).encode())

    fn.n = 0
    p = poller(store, src, fn, batch_size=2, max_retries=1, report_batch_item_failures=True)
    p.step()
    assert fn.n == 2 and p.stats.dead_lettered == 2


def test_retry_counts_survive_a_new_poller(store):
    # Two attempts counted by one poller, then the runner dies: the next one gives up after
    # one more, not after three (max_retries 2 means 3 invocations in all).
    src = MemorySource([rec(0)])
    m = store.create(Mapping.create(function="f", source_type="redis-stream", endpoint="redis://h:1/0",
                                    name="s", max_retries=2))
    store.add_attempt(m.uuid, ["0"])
    store.add_attempt(m.uuid, ["0"])
    fn = Function(poison=[0])
    Poller(m, src, store, fn, lambda *a: None).step()
    assert len(fn.calls) == 1 and src.acked == ["0"]


def test_old_records_are_given_up_without_an_invocation(store):
    src = MemorySource([rec(0, arrival=time.time() - 120), rec(1)])
    fn = Function()
    fwd = []
    p = poller(store, src, fn, fwd, batch_size=2, max_record_age_s=60, on_failure="function:dlq")
    p.step()
    assert fn.calls == [[1]]
    assert fwd[0][1]["requestContext"]["condition"] == "RecordAgeExceeded"


def test_filters_drop_records_without_invoking_but_acknowledge_them(store):
    src = MemorySource([rec(i, data=json.dumps({"n": i, "kind": "a" if i % 2 else "b"}).encode())
                        for i in range(6)] + [rec(9, data=b"\xff not json")])
    fn = Function()
    p = poller(store, src, fn, batch_size=10, filters=('{"data": {"kind": ["a"]}}',))
    p.step()
    assert fn.calls == [[1, 3, 5]]
    assert len(src.acked) == 7 and p.stats.filtered == 4


def test_a_batch_over_6_mb_is_split(store):
    big = b'"' + b"x" * (2 * 1024 * 1024) + b'"'
    src = MemorySource([rec(i, data=big) for i in range(4)])
    sizes = []
    p = poller(store, src, lambda n, body, q, t=None: (sizes.append(len(body)), ok())[1], batch_size=4)
    p.step()
    assert len(sizes) >= 2 and max(sizes) <= 6 * 1024 * 1024
    assert len(src.acked) == 4


def test_throttling_waits_and_drops_nothing(store):
    src = MemorySource([rec(0)])
    fn = Function(throttle=3)
    p = poller(store, src, fn, batch_size=1)
    p.step()
    assert fn.calls == [[0]] and p.stats.throttled == 3 and p.stats.failed_invocations == 0


def test_lanes_keep_per_key_order(store):
    records = [rec(i, key=f"k{i % 7}") for i in range(200)]
    src = MemorySource(records)
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def fn(name, body, q, trace=None):
        for r in json.loads(body)["Records"]:
            n = json.loads(base64.b64decode(r["kinesis"]["data"]))["n"]
            with lock:
                seen.setdefault(r["kinesis"]["partitionKey"], []).append(n)
        return ok()

    p = poller(store, src, fn, batch_size=50, parallelization=4)
    for _ in range(4):
        p.step()
    assert sum(len(v) for v in seen.values()) == 200
    assert all(v == sorted(v) for v in seen.values())


def test_a_deleted_function_stops_the_poller_and_keeps_the_records(store):
    src = MemorySource([rec(0)])
    states = []

    def fn(name, body, q, trace=None):
        raise ResourceNotFound("function f not found")

    p = poller(store, src, fn, batch_size=1)
    p.on_state = lambda result, reason: states.append((result, reason))
    p.run()  # returns by itself
    assert p.function_gone and src.acked == []
    assert "deleted" in states[-1][1]


def test_maximum_concurrency_caps_the_lanes(store):
    assert poller(store, MemorySource([]), Function(), parallelization=8, max_concurrency=3).lanes == 3
    assert poller(store, MemorySource([]), Function(), parallelization=2).lanes == 2


def test_batching_window_gathers_until_full_or_late(store):
    class Trickle(MemorySource):
        def poll(self, n, wait_s):
            return super().poll(min(n, 2), wait_s)

    src = Trickle([rec(i) for i in range(10)])
    p = poller(store, src, Function(), batch_size=6, batching_window_s=5)
    t0 = time.monotonic()
    assert [r.id for r in p.gather()] == ["0", "1", "2", "3", "4", "5"]  # full before the window
    assert time.monotonic() - t0 < 1
    p0 = poller(store, Trickle([rec(i) for i in range(10)]), Function(), batch_size=6)
    assert len(p0.gather()) == 2  # window 0: what is there now
