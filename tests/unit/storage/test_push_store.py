"""The PushStore contract (storage/base.py): triggers, topics and subscriptions."""

import pytest

from runner.errors import ResourceConflict, ResourceNotFound
from runner.storage.push import SQLitePushStore, Subscription, Trigger

IMPLEMENTATIONS = {"sqlite": SQLitePushStore}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request, tmp_path):
    s = IMPLEMENTATIONS[request.param](str(tmp_path))
    yield s
    s.close()


def test_triggers(store):
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


def test_topics_and_subscriptions(store):
    assert store.create_topic("news", 1.0) and not store.create_topic("news", 2.0)
    assert store.topics() == ["news"]
    s = Subscription("id1", "news", "f", "", {"a": ["x"]}, 1.0)
    store.subscribe(s)
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
