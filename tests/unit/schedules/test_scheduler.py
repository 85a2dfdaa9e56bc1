"""The scheduler with an injected clock and the real event queue (events.db): each slot fires
once, across restarts and crashes between queueing and advancing."""

import json
from datetime import datetime, timezone

import pytest

from runner.errors import InvalidParameter, ResourceNotFound, StorageFull
from runner.schedules.scheduler import Scheduler
from runner.storage.events import Event, EventStore
from runner.storage.schedules import SQLiteScheduleStore

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()  # a Wednesday, 00:00 UTC


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class Queue:
    """submit() as the Runner does it, on a real EventStore; functions named 'gone' are unknown."""

    def __init__(self, path):
        self.store = EventStore(path)
        self.fail = None

    def __call__(self, function, payload, *, qualifier=None, key=None, request_id=None):
        if function == "gone":
            raise ResourceNotFound(f"function not found: {function}")
        if self.fail:
            raise self.fail
        ok = self.store.enqueue(Event(request_id, function, qualifier or "", payload,
                                      self.store_now, 0, self.store_now), key)
        return request_id if ok else None

    store_now = 0.0

    def events(self):
        return self.store.due(1e12, (), 10_000)


@pytest.fixture
def world(tmp_path):
    clock = Clock(T0)
    queue = Queue(str(tmp_path))
    stores = []

    def scheduler():
        st = SQLiteScheduleStore(str(tmp_path))
        stores.append(st)
        return Scheduler(st, queue, clock=clock)

    yield clock, queue, scheduler
    for st in stores:
        st.close()
    queue.store.close()


def test_cron_fires_each_slot_once_with_the_scheduled_event_shape(world):
    clock, queue, make = world
    s = make()
    clock.now = T0 + 1  # created just after 00:00: the first slot is 01:00
    s.add("hourly", "f", "cron(0 * * * ? *)", input={"job": "report"})
    assert s.tick(T0 + 3599) == []
    fired = s.tick(T0 + 3600)
    assert [(n, slot) for n, slot, _ in fired] == [("hourly", T0 + 3600)]
    assert s.tick(T0 + 3600) == [] and s.tick(T0 + 3700) == []
    (event,) = queue.events()
    doc = json.loads(event.payload)
    assert doc["detail-type"] == "Scheduled Event" and doc["source"] == "aws.scheduler"
    assert doc["time"] == "2025-01-01T01:00:00Z" and doc["detail"] == {"job": "report"}
    assert doc["resources"] == ["arn:aws:scheduler:local-1:000000000000:schedule/default/hourly"]
    assert doc["id"] == event.id


def test_rate_fires_at_once_then_every_period(world):
    clock, queue, make = world
    s = make()
    s.add("r", "f", "rate(5 minutes)")
    assert [slot for _, slot, _ in s.tick(T0)] == [T0]
    assert [slot for _, slot, _ in s.tick(T0 + 600)] == [T0 + 300, T0 + 600]
    assert len(queue.events()) == 3


def test_restart_fires_missed_slots_within_max_event_age_and_drops_older(world):
    clock, queue, make = world
    s = make()
    s.add("m", "f", "cron(0/10 * * * ? *)", max_event_age_s=1800)
    s.tick(T0 + 600)  # slot 00:10 delivered
    # "Down" until 01:05: a new scheduler (a restart) on the same files.
    s2 = make()
    out = s2.tick(T0 + 3900)
    delivered = [slot for _, slot, r in out if not r.startswith("dropped")]
    dropped = [slot for _, slot, r in out if r.startswith("dropped")]
    # 00:20 and 00:30 are more than 30 minutes old at 01:05; 00:40 ... 01:00 are not.
    assert dropped == [T0 + 1200, T0 + 1800]
    assert delivered == [T0 + 2400, T0 + 3000, T0 + 3600]
    assert [d.slot for d in s2.store.dropped("m")] == dropped
    assert "max_event_age_s" in s2.store.dropped("m")[0].reason
    assert len(queue.events()) == 4  # 00:10 + three caught up, nothing twice


def test_crash_between_queue_and_advance_does_not_fire_twice(world):
    clock, queue, make = world
    s = make()
    s.add("c", "f", "cron(0/10 * * * ? *)")
    # The slot is queued, then the process dies before the store moves on.
    s.store.advance = lambda *a, **k: True
    s.tick(T0 + 600)
    assert len(queue.events()) == 1
    s2 = make()  # restart: the store still says 00:10
    assert s2.store.get("c").next_slot == T0 + 600
    out = s2.tick(T0 + 660)
    assert [slot for _, slot, _ in out] == [T0 + 600]
    assert len(queue.events()) == 1  # the queue refused the slot's key
    assert s2.store.get("c").next_slot == T0 + 1200


def test_queue_failure_keeps_the_slot_for_the_next_tick(world):
    clock, queue, make = world
    s = make()
    s.add("k", "f", "rate(1 minute)")
    queue.fail = StorageFull("the data directory is full")
    assert s.tick(T0) == []
    assert s.store.get("k").next_slot == T0
    queue.fail = None
    assert [slot for _, slot, _ in s.tick(T0 + 1)] == [T0]


def test_unknown_function_drops_the_slot_with_the_reason(world):
    clock, queue, make = world
    s = make()
    s.add("g", "gone", "rate(1 minute)")
    out = s.tick(T0)
    assert out[0][2].startswith("dropped") and "function not found" in out[0][2]
    assert s.store.dropped("g")[0].slot == T0 and queue.events() == []


def test_at_fires_once_then_nothing_is_left(world):
    clock, queue, make = world
    s = make()
    s.add("once", "f", "at(2025-01-01T02:00:00)", timezone="Europe/Paris")  # 01:00 UTC
    assert s.tick(T0 + 3599) == []
    assert [slot for _, slot, _ in s.tick(T0 + 3600)] == [T0 + 3600]
    assert s.get("once").next_slot is None and s.tick(T0 + 99999) == []


def test_disable_enable_and_update(world):
    clock, queue, make = world
    s = make()
    s.add("u", "f", "cron(0 * * * ? *)")
    s.update("u", enabled=False)
    assert s.tick(T0 + 7200) == []
    clock.now = T0 + 7200 + 60
    s.update("u", enabled=True)  # resumes from now: the slots while disabled do not fire
    assert s.get("u").next_slot == T0 + 3 * 3600
    s.update("u", expression="cron(30 * * * ? *)")
    assert s.get("u").next_slot == T0 + 2 * 3600 + 1800
    with pytest.raises(InvalidParameter, match="expression"):
        s.update("u", expression="cron(bad)")
    with pytest.raises(InvalidParameter, match="colour"):
        s.update("u", colour="red")


def test_end_and_start_dates_bound_the_slots(world):
    clock, queue, make = world
    s = make()
    s.add("b", "f", "rate(1 hour)", start_at=T0 + 3600, end_at=T0 + 3 * 3600)
    assert s.get("b").next_slot == T0 + 3600
    fired = [slot for _, slot, _ in s.tick(T0 + 10 * 3600)]
    assert fired == [T0 + 3600, T0 + 7200, T0 + 10800]
    assert s.get("b").next_slot is None


def test_flexible_window_delays_within_the_window_stably(world):
    clock, queue, make = world
    s = make()
    s.add("w", "f", "cron(0 1 * * ? *)", flexible_window_min=15)
    from runner.schedules.scheduler import window_offset

    off = window_offset(s.get("w"), T0 + 3600)
    assert 0 <= off < 900
    assert s.tick(T0 + 3600 + off - 1) == [] if off >= 1 else True
    assert [slot for _, slot, _ in s.tick(T0 + 3600 + off)] == [T0 + 3600]


def test_recreated_schedule_of_the_same_name_fires_again(world):
    clock, queue, make = world
    s = make()
    s.add("x", "f", "rate(1 minute)", start_at=T0 + 60)
    assert len(s.tick(T0 + 60)) == 1
    s.delete("x")
    clock.now = T0 + 60
    s.add("x", "f", "rate(1 minute)", start_at=T0 + 60)  # the same slot, a new schedule
    assert len(s.tick(T0 + 61)) == 1
    assert len(queue.events()) == 2


@pytest.mark.parametrize("bad,field", [
    ({"flexible_window_min": 2000}, "flexible_window_min"),
    ({"max_event_age_s": 10}, "max_event_age_s"),
    ({"max_retries": 500}, "max_retries"),
    ({"timezone": "Nowhere/Land"}, "timezone"),
    ({"start_at": T0 + 10, "end_at": T0}, "end_at"),
])
def test_bad_settings_are_refused_naming_the_field(world, bad, field):
    clock, queue, make = world
    with pytest.raises(InvalidParameter, match=field):
        make().add("bad", "f", "rate(1 day)", **bad)
