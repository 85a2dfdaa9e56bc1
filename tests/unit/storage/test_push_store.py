"""The PushStore contract (storage/base.py): triggers, topics and subscriptions, on SQLite and
PostgreSQL alike (the `state` fixture, tests/state_fixtures.py). The tests at the end are of
what only a shared store has: several nodes creating the same things at once (decision 078)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.errors import InvalidParameter, ResourceConflict, ResourceNotFound
from runner.storage.push import Subscription, Trigger
from runner.triggers.service import Triggers


def test_triggers(state):
    store = state.push()
    t = Trigger("t1", "f", "uploads", ("s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"),
                "img/", ".jpg", "live", 5.0)
    store.add_trigger(t)
    store.add_trigger(Trigger("t0", "g", "other"))
    assert store.get_trigger("t1") == t
    assert [x.name for x in store.triggers()] == ["t0", "t1"]
    assert store.triggers("uploads") == [t] and store.triggers("none") == []
    with pytest.raises(ResourceConflict, match="name"):
        store.add_trigger(t)
    assert store.delete_trigger("t1") == t
    with pytest.raises(ResourceNotFound, match="runner trigger list"):
        store.get_trigger("t1")
    with pytest.raises(ResourceNotFound):
        store.delete_trigger("t1")


def test_topics_and_subscriptions(state):
    store = state.push()
    assert store.create_topic("news", 1.0) and not store.create_topic("news", 2.0)
    assert store.topics() == ["news"]
    s = Subscription("id1", "news", "f", "", {"a": ["x"]}, 1.0)
    assert store.subscribe(s) == s
    store.subscribe(Subscription("id2", "news", "g", "2", None, 2.0))
    assert [x.id for x in store.subscriptions("news")] == ["id1", "id2"]
    assert store.subscriptions("news")[0] == s and store.subscriptions("news")[0].filter_policy
    assert store.unsubscribe("id1").function == "f"
    with pytest.raises(ResourceNotFound):
        store.unsubscribe("id1")
    with pytest.raises(ResourceNotFound, match="topic"):
        store.subscribe(Subscription("id3", "nope", "f"))
    with pytest.raises(ResourceNotFound, match="topic"):
        store.subscriptions("nope")
    store.delete_topic("news")
    assert store.topics() == []
    with pytest.raises(ResourceNotFound):
        store.delete_topic("news")


def test_subscribing_again_is_idempotent_and_a_new_policy_is_refused(state):
    store = state.push()
    store.create_topic("news", 1.0)
    first = store.subscribe(Subscription("id1", "news", "f", "", {"a": ["x"]}, 1.0))
    again = store.subscribe(Subscription("id2", "news", "f", "", {"a": ["x"]}, 2.0))
    assert again == first and [x.id for x in store.subscriptions("news")] == ["id1"]
    with pytest.raises(ResourceConflict, match="policy.*unsubscribe"):
        store.subscribe(Subscription("id3", "news", "f", "", {"a": ["y"]}, 3.0))
    # Another qualifier of the same function is another subscription.
    assert store.subscribe(Subscription("id4", "news", "f", "live", None, 4.0)).id == "id4"
    assert [x.id for x in store.subscriptions("news")] == ["id1", "id4"]


def test_a_deleted_topic_takes_its_subscriptions_with_it(state):
    store = state.push()
    store.create_topic("news", 1.0)
    store.subscribe(Subscription("id1", "news", "f", "", None, 1.0))
    store.delete_topic("news")
    store.create_topic("news", 2.0)
    assert store.subscriptions("news") == []
    with pytest.raises(ResourceNotFound):
        store.unsubscribe("id1")


def test_adding_is_reentrant_and_its_statements_run_inside_it(state):
    store = state.push()
    with store.adding():
        with store.adding():
            store.add_trigger(Trigger("t1", "f", "uploads"))
        assert [t.name for t in store.triggers("uploads")] == ["t1"]
    with store.adding():  # released: it can be taken again
        pass


# ---------------------------------------------------------------- several nodes, one store


def test_what_one_node_creates_another_lists(pg_state):
    a, b = pg_state.push(), pg_state.push()
    a.add_trigger(Trigger("t1", "f", "uploads"))
    a.create_topic("news", 1.0)
    a.subscribe(Subscription("id1", "news", "f", "", None, 1.0))
    assert [t.name for t in b.triggers("uploads")] == ["t1"]
    assert [s.id for s in b.subscriptions("news")] == ["id1"]
    b.delete_topic("news")
    assert a.topics() == []


def test_concurrent_creation_on_two_nodes_makes_one_of_each(pg_state):
    nodes = [pg_state.push(), pg_state.push()]

    def subscribe(i):
        store = nodes[i % 2]
        store.create_topic("news", float(i))
        return store.subscribe(Subscription(f"id{i}", "news", "f", "", None, float(i))).id

    def add(i):
        try:
            nodes[i % 2].add_trigger(Trigger("t1", "f", "uploads", created_at=float(i)))
            return "added"
        except ResourceConflict:
            return "conflict"

    with ThreadPoolExecutor(8) as ex:
        ids = set(ex.map(subscribe, range(16)))
        added = list(ex.map(add, range(16)))
    [sub] = nodes[0].subscriptions("news")
    assert ids == {sub.id} and nodes[1].topics() == ["news"]
    assert added.count("added") == 1 and len(nodes[1].triggers()) == 1


def test_adding_holds_every_node_until_the_holder_leaves(pg_state):
    a, b = pg_state.push(), pg_state.push()
    entered_b = threading.Event()

    def take_b():
        with b.adding():
            entered_b.set()

    with a.adding():
        thread = threading.Thread(target=take_b)
        thread.start()
        # Waiting longer only makes B more certainly blocked: no verdict depends on speed.
        assert not entered_b.wait(0.5)
    assert entered_b.wait(30)
    thread.join(30)


def test_overlapping_triggers_added_on_two_nodes_at_once_one_is_refused(pg_state):
    # Triggers.add checks overlaps under adding(): with the lock shared by the nodes, the
    # second check sees the first's trigger, whichever node it runs on.
    services = [Triggers(pg_state.push(), runner=None), Triggers(pg_state.push(), runner=None)]
    start = threading.Barrier(8)

    def add(i):
        start.wait(30)
        try:
            services[i % 2].add(f"t{i}", "f", "uploads", prefix="img/")
            return "added"
        except InvalidParameter:
            return "overlap"

    with ThreadPoolExecutor(8) as ex:
        outcomes = list(ex.map(add, range(8)))
    assert outcomes.count("added") == 1 and outcomes.count("overlap") == 7
    assert len(services[1].list()) == 1
