"""The ScheduleStore contract (storage/base.py). Every implementation runs these."""

import pytest

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.schedules import Schedule, SQLiteScheduleStore

IMPLEMENTATIONS = {"sqlite": SQLiteScheduleStore}


@pytest.fixture(params=sorted(IMPLEMENTATIONS) + ["postgresql"])
def store(request, tmp_path):
    if request.param == "postgresql":  # the cluster's shared state (docs/cluster.md)
        from runner.storage.postgres.schedules import PostgresScheduleStore
        from tests.state_fixtures import fresh_database

        s = PostgresScheduleStore(fresh_database(request.getfixturevalue("pg_server")))
    else:
        s = IMPLEMENTATIONS[request.param](str(tmp_path))
    yield s
    s.close()


def sched(name="s1", **kw):
    return Schedule(name=name, function="f", expression="rate(5 minutes)", created_at=1.0, **kw)


def test_create_get_list_delete(store):
    store.create(sched("b", input={"k": 1}), 100.0, 1.0)
    store.create(sched("a"), None, 1.0)
    got = store.get("b")
    assert got.input == {"k": 1} and got.next_slot == 100.0 and got.enabled
    assert [s.name for s in store.list()] == ["a", "b"]
    assert store.delete("a").name == "a"
    with pytest.raises(ResourceNotFound, match="runner schedule list"):
        store.get("a")
    with pytest.raises(ResourceNotFound):
        store.delete("a")


def test_a_name_is_created_once(store):
    store.create(sched(), 1.0, 1.0)
    with pytest.raises(ResourceConflict, match="name"):
        store.create(sched(), 2.0, 1.0)


def test_due_is_enabled_and_at_or_before_now_earliest_first(store):
    store.create(sched("late"), 50.0, 1.0)
    store.create(sched("early"), 10.0, 1.0)
    store.create(sched("off", enabled=False), 5.0, 1.0)
    store.create(sched("future"), 500.0, 1.0)
    store.create(sched("done"), None, 1.0)
    assert [s.name for s in store.due(100.0)] == ["early", "late"]
    assert store.next_due_at() == 10.0


def test_advance_is_compare_and_set_and_records_drops(store):
    store.create(sched(), 10.0, 1.0)
    assert store.advance("s1", 10.0, 20.0)
    assert not store.advance("s1", 10.0, 30.0)  # not at 10 any more
    assert store.get("s1").next_slot == 20.0
    assert store.advance("s1", 20.0, 30.0, dropped="missed", now=99.0)
    assert [(d.slot, d.reason) for d in store.dropped("s1")] == [(20.0, "missed")]
    assert not store.advance("nope", 1.0, 2.0)


def test_replace_keeps_name_and_sets_slot(store):
    store.create(sched(), 10.0, 1.0)
    store.replace(sched(enabled=False, timezone="Europe/Paris"), 77.0, 2.0)
    got = store.get("s1")
    assert not got.enabled and got.timezone == "Europe/Paris" and got.next_slot == 77.0
    with pytest.raises(ResourceNotFound):
        store.replace(sched("other"), 1.0, 2.0)


def test_survives_reopening(tmp_path):
    s = SQLiteScheduleStore(str(tmp_path))
    s.create(sched(), 10.0, 1.0)
    s.advance("s1", 10.0, 20.0)
    s.close()
    s = SQLiteScheduleStore(str(tmp_path))
    assert s.get("s1").next_slot == 20.0
    s.close()
