"""The contract every MappingStore implementation passes (issue 18).

`STORES` lists the factories; a PostgreSQL implementation adds itself here (a factory taking
the pytest tmp_path) and runs the same suite.
"""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameter, ResourceNotFound
from runner.storage.mapping_model import DEFAULT_MAX_RETRIES, Mapping
from runner.storage.mappings import SQLiteMappingStore


def sqlite_store(tmp_path):
    return SQLiteMappingStore(str(tmp_path))


STORES = {"sqlite": sqlite_store}


@pytest.fixture(params=sorted(STORES) + ["postgresql"])
def store(request, tmp_path):
    if request.param == "postgresql":  # the cluster's shared state (docs/cluster.md)
        from runner.storage.postgres.mappings import PostgresMappingStore
        from tests.state_fixtures import fresh_database

        s = PostgresMappingStore(fresh_database(request.getfixturevalue("pg_server")))
    else:
        s = STORES[request.param](tmp_path)
    yield s
    s.close()


def mapping(**kw) -> Mapping:
    base = dict(function="f", source_type="redis-stream", endpoint="redis://127.0.0.1:6379/0", name="s")
    base.update(kw)
    return Mapping.create(**base)


def test_create_get_list_delete(store):
    a = store.create(mapping(function="f"))
    b = store.create(mapping(function="g", source_type="nats-jetstream", endpoint="nats://127.0.0.1:4222",
                             name="orders.>"))
    assert store.get(a.uuid) == a
    assert [m.uuid for m in store.list()] == [a.uuid, b.uuid]
    assert [m.uuid for m in store.list("g")] == [b.uuid]
    assert b.batch_size == 10 and a.batch_size == 100  # Lambda's SQS and Kinesis defaults
    assert a.max_retries == DEFAULT_MAX_RETRIES
    assert store.delete(a.uuid) == a
    with pytest.raises(ResourceNotFound, match=a.uuid):
        store.get(a.uuid)
    assert [m.uuid for m in store.list()] == [b.uuid]


def test_update_applies_a_change_and_bumps_the_version(store):
    a = store.create(mapping())
    v = store.version()
    new = store.update(a.uuid, lambda m: m.with_changes(batch_size=7, enabled=False))
    assert new.batch_size == 7 and not new.enabled
    assert store.get(a.uuid) == new
    assert store.version() > v
    with pytest.raises(ResourceNotFound):
        store.update("nope", lambda m: m)


def test_a_failed_change_changes_nothing(store):
    a = store.create(mapping())
    with pytest.raises(InvalidParameter, match="batch_size"):
        store.update(a.uuid, lambda m: m.with_changes(batch_size=0))
    with pytest.raises(InvalidParameter, match="endpoint"):
        store.update(a.uuid, lambda m: m.with_changes(endpoint="redis://other:1/0"))
    assert store.get(a.uuid) == a


def test_checkpoints_are_per_mapping_and_partition(store):
    a = store.create(mapping())
    assert store.checkpoint(a.uuid, "0") is None
    store.set_checkpoint(a.uuid, "0", "41")
    store.set_checkpoint(a.uuid, "0", "42")
    store.set_checkpoint(a.uuid, "1", "7")
    assert store.checkpoint(a.uuid, "0") == "42"
    assert store.checkpoint(a.uuid, "1") == "7"
    store.delete(a.uuid)
    assert store.checkpoint(a.uuid, "0") is None


def test_attempts_count_and_clear(store):
    a = store.create(mapping())
    assert store.attempts(a.uuid, ["r1", "r2"]) == {"r1": 0, "r2": 0}
    assert not store.has_attempts(a.uuid)
    assert store.add_attempt(a.uuid, ["r1", "r2"]) == {"r1": 1, "r2": 1}
    assert store.add_attempt(a.uuid, ["r1"]) == {"r1": 2}
    store.clear_attempts(a.uuid, ["r2"])
    assert store.attempts(a.uuid, ["r1", "r2"]) == {"r1": 2, "r2": 0}
    assert store.has_attempts(a.uuid)
    many = [f"x{i}" for i in range(1200)]  # more than one IN (...) chunk
    store.add_attempt(a.uuid, many)
    assert set(store.attempts(a.uuid, many).values()) == {1}


def test_state_survives_reopening(tmp_path):
    for factory in STORES.values():
        s = factory(tmp_path)
        a = s.create(mapping())
        s.add_attempt(a.uuid, ["r"])
        s.set_checkpoint(a.uuid, "p", "9")
        s.close()
        s = factory(tmp_path)
        try:
            assert s.get(a.uuid) == a
            assert s.attempts(a.uuid, ["r"]) == {"r": 1}
            assert s.checkpoint(a.uuid, "p") == "9"
        finally:
            s.close()


@pytest.mark.parametrize("field,kw", [
    ("source_type", {"source_type": "kafka"}),
    ("endpoint", {"endpoint": "http://x:1"}),
    ("endpoint", {"endpoint": "redis://host:99999/0"}),
    ("batch_size", {"batch_size": 0}),
    ("batching_window_s", {"batching_window_s": 301}),
    ("starting_position", {"starting_position": "EARLIEST"}),
    ("starting_timestamp", {"starting_position": "AT_TIMESTAMP"}),
    ("max_retries", {"max_retries": -2}),
    ("max_record_age_s", {"max_record_age_s": 10}),
    ("parallelization", {"parallelization": 11}),
    ("max_concurrency", {"max_concurrency": 1}),
    ("on_failure", {"on_failure": "queue:x"}),
    ("on_failure", {"on_failure": "subject:x"}),  # a redis mapping's dead letters go to a stream
    ("filters[0]", {"filters": ("{not json",)}),
])
def test_out_of_range_settings_name_the_field(field, kw):
    with pytest.raises(InvalidParameter) as exc:
        mapping(**kw)
    assert exc.value.field == field
    assert exc.value.error_type == "InvalidParameterValueException"
