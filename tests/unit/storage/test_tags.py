"""The TagStore contract (runner/storage/tags.py), run against every implementation."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameter
from runner.storage.tags import MAX_TAGS, SQLiteTagStore

IMPLEMENTATIONS = ["sqlite"]


@pytest.fixture(params=IMPLEMENTATIONS)
def tags(request, tmp_path):
    store = SQLiteTagStore(str(tmp_path))
    yield store
    store.close()


def test_tag_untag_forget(tags):
    assert tags.tag("f", {"a": "1", "b": "2"}) == {"a": "1", "b": "2"}
    assert tags.tag("f", {"a": "3"}) == {"a": "3", "b": "2"}
    tags.untag("f", ["b", "missing"])
    assert tags.tags("f") == {"a": "3"} and tags.tags("g") == {}
    tags.forget("f")
    assert tags.tags("f") == {}


@pytest.mark.parametrize("bad", [{"aws:k": "v"}, {"": "v"}, {"k" * 129: "v"}, {"k": "v" * 257},
                                 {"k": 1}])
def test_refused_and_nothing_changes(tags, bad):
    tags.tag("f", {"keep": "1"})
    with pytest.raises(InvalidParameter):
        tags.tag("f", bad)
    assert tags.tags("f") == {"keep": "1"}


def test_at_most_fifty(tags):
    tags.tag("f", {f"k{i}": "v" for i in range(MAX_TAGS)})
    with pytest.raises(InvalidParameter):
        tags.tag("f", {"one-more": "v"})
    assert len(tags.tags("f")) == MAX_TAGS
