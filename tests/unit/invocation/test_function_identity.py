"""A function has an identity apart from its name: deleting it and creating another function
of the same name never hands the new one the old one's queued events, dead letters, routes or
log blocks still in flight (decision 047). Before, 3 of 3 events queued before a delete ran on
the re-created function's code, and an old log line appeared in the new function's log."""

from __future__ import annotations

import time

import pytest

from runner import Runner
from runner.storage.events import DeadLetter, Event, Outcome
from tests.async_helpers import RECORDER, records, wait_for

pytestmark = pytest.mark.usefixtures("guests_see_host_files")


@pytest.fixture
def rec_dir(tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    return str(d)


def _deploy(r: Runner, rec_dir: str, tag: str):
    return r.deploy("f", RECORDER, runtime="python", handler="app.handler",
                    environment={"RECORD_DIR": rec_dir, "TAG": tag})


def test_a_recreated_function_is_another_function(tmp_path, rec_dir):
    with Runner(str(tmp_path / "data"), idle_ttl_s=60, async_retry_base_s=0.05) as r:
        old = _deploy(r, rec_dir, "old")
        again = _deploy(r, rec_dir, "old-updated")
        assert again.function_uid == old.function_uid  # an update is the same function
        r.delete("f")
        new = _deploy(r, rec_dir, "new")
        assert new.function_uid and new.function_uid != old.function_uid


def test_events_queued_before_a_delete_never_run_on_the_new_function(tmp_path, rec_dir):
    with Runner(str(tmp_path / "data"), idle_ttl_s=60, async_retry_base_s=0.05) as r:
        old = _deploy(r, rec_dir, "old")
        later = time.time() + 1.0  # queued, not yet due
        for i in range(3):
            r.events.enqueue(Event(f"queued-{i}", "f", "", b'{"n": 1}', time.time(), 0, later,
                                   old.function_uid))
        r.delete("f")
        assert r.events.pending("f") == 0  # Lambda discards a deleted function's queue
        _deploy(r, rec_dir, "new")
        # One accepted for the old function but enqueued after the delete (a submit racing
        # it): discarded when it comes up, not run.
        r.events.enqueue(Event("raced", "f", "", b'{"n": 2}', time.time(), 0, time.time(),
                               old.function_uid))
        rid = r.invoke_async("f", b'{"n": 3}')  # the new function's own event runs
        wait_for(lambda: records(rec_dir, "f"), "the new function's event")
        wait_for(lambda: r.events.pending() == 0, "the queue to empty")
        time.sleep(1.2)  # past the old events' due time
        assert [rid_ for rid_, _ in records(rec_dir, "f")] == [rid]
        assert r.events.dead_letters("f") == []


def test_dead_letters_and_routes_go_with_the_function(tmp_path, rec_dir):
    with Runner(str(tmp_path / "data"), idle_ttl_s=60, async_retry_base_s=0.05) as r:
        _deploy(r, rec_dir, "old")
        r.add_route("GET", "/f", "f")
        r.add_route("GET", "/other", "g")
        r.events.enqueue(Event("orphan", "f", "", b"{}", time.time(), 0, time.time() + 3600))
        r.events.complete("orphan", Outcome(dead_letter=DeadLetter(
            "orphan", "f", "", b"{}", {"x": 1}, time.time())))
        assert len(r.events.dead_letters("f")) == 1
        r.delete("f")
        assert r.events.dead_letters("f") == []
        assert [route.path for route in r.list_routes()] == ["/other"]


def test_a_log_block_in_flight_for_a_deleted_function_is_not_the_new_ones(tmp_path, rec_dir):
    with Runner(str(tmp_path / "data"), idle_ttl_s=60) as r:
        _deploy(r, rec_dir, "old")
        result, pending = r.invoke_log_later("f", b'{"n": 1}')
        r.delete("f")
        _deploy(r, rec_dir, "new")
        pending.write()  # the old function's block, written after the new function exists
        assert result.request_id not in "\n".join(r.read_logs("f"))
        fresh = r.invoke("f", b'{"n": 2}')
        assert any(fresh.request_id in line for line in r.read_logs("f"))
