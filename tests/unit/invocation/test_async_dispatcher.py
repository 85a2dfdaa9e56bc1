"""Asynchronous invocation through the embedding API: queueing, retries, destinations,
throttling, event age and the dead-letter store."""

from __future__ import annotations

import time

import pytest

from runner import Runner
from runner.errors import InvalidParameter, InvalidRequestContent, RequestTooLarge, ResourceNotFound
from runner.storage.events import Event
from tests.async_helpers import RECORDER, records, wait_for

# The recorder guest writes into a host directory the test reads back.
pytestmark = pytest.mark.usefixtures("guests_see_host_files")


@pytest.fixture
def arunner(tmp_path):
    r = Runner(str(tmp_path / "data"), idle_ttl_s=60, async_retry_base_s=0.05)
    yield r
    r.close()


@pytest.fixture
def rec_dir(tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    return str(d)


def deploy_recorder(r: Runner, name: str, rec_dir: str, **settings):
    return r.deploy(name, RECORDER, runtime="python", handler="app.handler",
                    environment={"RECORD_DIR": rec_dir}, **settings)


def test_event_runs_once_with_its_request_id(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir)
    rid = arunner.invoke_async("rec", b'{"n": 1}')
    got = wait_for(lambda: records(rec_dir, "rec"), "the event to run")
    assert got == [(rid, {"n": 1})]
    wait_for(lambda: arunner.events.pending() == 0, "the event to leave the queue")


def test_rejected_before_queueing(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir)
    with pytest.raises(ResourceNotFound):
        arunner.invoke_async("nope", b"{}")
    with pytest.raises(InvalidRequestContent):
        arunner.invoke_async("rec", b"{not json")
    with pytest.raises(RequestTooLarge):
        arunner.invoke_async("rec", b'"' + b"x" * (1024 * 1024) + b'"')
    assert arunner.events.pending() == 0


def test_retries_then_dead_letter_with_lambda_record(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir, max_retries=2, on_failure="dlq")
    rid = arunner.invoke_async("rec", b'{"fail": "always"}')
    letters = wait_for(lambda: arunner.events.dead_letters("rec"), "a dead letter")
    assert [rid] * 3 == [r for r, _ in records(rec_dir, "rec")]  # 1 try + 2 retries
    rec = letters[0].record
    assert letters[0].id == rid
    assert rec["version"] == "1.0"
    assert rec["requestContext"] == {
        "requestId": rid, "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:rec:$LATEST",
        "condition": "RetriesExhausted", "approximateInvokeCount": 3}
    assert rec["requestPayload"] == {"fail": "always"}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                      "functionError": "Unhandled"}
    assert rec["responsePayload"]["errorType"] == "RuntimeError"
    assert rec["responsePayload"]["errorMessage"] == "asked to fail: always"
    assert rec["timestamp"].endswith("Z")


def test_zero_retries_runs_once(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir, max_retries=0, on_failure="dlq")
    rid = arunner.invoke_async("rec", b'{"fail": "once"}')
    wait_for(lambda: arunner.events.dead_letters("rec"), "a dead letter")
    assert [r for r, _ in records(rec_dir, "rec")] == [rid]
    assert arunner.events.dead_letters("rec")[0].record["requestContext"]["approximateInvokeCount"] == 1


def test_a_host_failure_after_the_handler_ran_counts_as_an_attempt(arunner, rec_dir):
    # E.g. the log write failing on a full disk after the handler returned: the attempt is
    # counted, so max_retries=0 means one run, then the failure destination.
    deploy_recorder(arunner, "rec", rec_dir, max_retries=0, on_failure="dlq")
    real = arunner.async_invoker._invoke

    def ran_then_failed(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(28, "No space left on device")

    arunner.async_invoker._invoke = ran_then_failed
    rid = arunner.invoke_async("rec", b'{"n": 1}')
    letters = wait_for(lambda: arunner.events.dead_letters("rec"), "a dead letter")
    time.sleep(0.5)  # a tight re-run loop would show more records by now
    assert [r for r, _ in records(rec_dir, "rec")] == [rid]
    doc = letters[0].record["responsePayload"]
    assert doc["errorType"] == "ServiceException" and "No space left on device" in doc["errorMessage"]


def test_an_outcome_that_cannot_be_recorded_is_retried_later_not_in_a_loop(arunner, rec_dir, monkeypatch):
    from runner.invocation import async_dispatcher

    monkeypatch.setattr(async_dispatcher, "UNRECORDED_BACKOFF_S", 1.0)
    deploy_recorder(arunner, "rec", rec_dir)
    store = arunner.async_invoker.store
    real_complete, failures = store.complete, []

    def complete_fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OSError(28, "No space left on device")
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(store, "complete", complete_fails_once)
    rid = arunner.invoke_async("rec", b'{"n": 2}')
    wait_for(lambda: records(rec_dir, "rec"), "the first run")
    time.sleep(0.5)
    assert len(records(rec_dir, "rec")) == 1  # held back, not re-run at once
    wait_for(lambda: arunner.events.pending() == 0, "the second run to be recorded")
    assert [r for r, _ in records(rec_dir, "rec")] == [rid, rid]  # at least once: ran again


def test_replay_queues_dead_letters_again(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir, max_retries=0, on_failure="dlq")
    rid = arunner.invoke_async("rec", b'{"fail": "x"}')
    wait_for(lambda: arunner.events.dead_letters("rec"), "a dead letter")
    with pytest.raises(ResourceNotFound, match="no dead letter 'missing'"):
        arunner.async_invoker.replay("rec", ["missing"])
    assert arunner.async_invoker.replay("rec", [rid]) == [rid]
    wait_for(lambda: len(records(rec_dir, "rec")) == 2, "the replayed event to run")
    wait_for(lambda: arunner.events.dead_letters("rec"), "the replay to fail into the store again")
    assert [r for r, _ in records(rec_dir, "rec")] == [rid, rid]


def test_on_success_and_on_failure_deliver_to_functions(arunner, rec_dir):
    deploy_recorder(arunner, "ok-dest", rec_dir)
    deploy_recorder(arunner, "fail-dest", rec_dir)
    deploy_recorder(arunner, "src", rec_dir, max_retries=1, on_success="ok-dest",
                    on_failure="fail-dest")
    good = arunner.invoke_async("src", b'{"k": "good"}')
    bad = arunner.invoke_async("src", b'{"fail": "bad"}')
    ok = wait_for(lambda: records(rec_dir, "ok-dest"), "the success record")
    failed = wait_for(lambda: records(rec_dir, "fail-dest"), "the failure record")
    s = ok[0][1]
    assert s["requestContext"]["requestId"] == good
    assert s["requestContext"]["condition"] == "Success"
    assert s["requestContext"]["approximateInvokeCount"] == 1
    assert s["requestPayload"] == {"k": "good"}
    assert s["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert s["responsePayload"] == {"recorded": good}
    f = failed[0][1]
    assert f["requestContext"]["requestId"] == bad
    assert f["requestContext"]["condition"] == "RetriesExhausted"
    assert f["requestContext"]["approximateInvokeCount"] == 2
    assert f["responsePayload"]["errorMessage"] == "asked to fail: bad"


def test_throttled_events_wait_in_the_queue(arunner, rec_dir):
    # One environment at a time and four dispatcher workers: most events are throttled at
    # first; none may fail or be dropped for it.
    deploy_recorder(arunner, "rec", rec_dir, concurrency=1, max_retries=0, on_failure="dlq")
    ids = [arunner.invoke_async("rec", b'{"sleep": 0.2}') for _ in range(4)]
    wait_for(lambda: len(records(rec_dir, "rec")) >= 4, "all throttled events to run")
    wait_for(lambda: arunner.events.pending() == 0, "the queue to drain")
    assert sorted(r for r, _ in records(rec_dir, "rec")) == sorted(ids)
    assert arunner.events.dead_letters("rec") == []


def test_too_old_event_is_given_up_without_running(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir, max_event_age_s=60, on_failure="dlq")
    old = time.time() - 120
    arunner.events.enqueue(Event("old-event", "rec", "", b"{}", old, 0, old))
    arunner.async_invoker._wake()
    letters = wait_for(lambda: arunner.events.dead_letters("rec"), "the expired event")
    assert letters[0].record["requestContext"]["condition"] == "EventAgeExceeded"
    assert letters[0].record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in letters[0].record
    assert records(rec_dir, "rec") == []


def test_event_of_a_deleted_function_is_kept(arunner, rec_dir):
    deploy_recorder(arunner, "rec", rec_dir)
    arunner.events.enqueue(Event("orphan", "gone", "", b'{"a": 1}', time.time(), 0, time.time()))
    arunner.async_invoker._wake()
    letters = wait_for(lambda: arunner.events.dead_letters("gone"), "the orphan dead letter")
    assert letters[0].record["responsePayload"]["errorType"] == "ResourceNotFoundException"
    assert letters[0].payload == b'{"a": 1}'


def test_queued_events_survive_a_restart(tmp_path, rec_dir):
    data = str(tmp_path / "data")
    with Runner(data, async_retry_base_s=0.05) as r:
        deploy_recorder(r, "rec", rec_dir)
        # Queued straight into the store with a due time in the future: the first Runner
        # closes before it may run.
        later = time.time() + 3600
        r.events.enqueue(Event("survivor", "rec", "", b'{"x": 1}', time.time(), 0, later))
    with Runner(data, async_retry_base_s=0.05) as r:
        assert r.events.pending("rec") == 1
        r.events.reschedule("survivor", time.time(), 0, None)
        r.async_invoker._wake()
        wait_for(lambda: records(rec_dir, "rec"), "the surviving event to run")
    assert records(rec_dir, "rec") == [("survivor", {"x": 1})]


@pytest.mark.parametrize("field,value", [
    ("max_retries", 3), ("max_event_age_s", 59), ("max_event_age_s", 21601),
    ("on_success", "bad name!"), ("on_failure", "bad name!"),
])
def test_async_settings_are_validated(arunner, rec_dir, field, value):
    with pytest.raises(InvalidParameter, match=field):
        deploy_recorder(arunner, "rec", rec_dir, **{field: value})
