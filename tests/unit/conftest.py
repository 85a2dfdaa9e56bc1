"""Fixtures shared by unit-test packages that drive a real Runner the same way."""

import pytest

from runner import Runner
from runner.storage.push import SQLitePushStore
from runner.topics.service import Topics
from runner.triggers.service import Triggers
from tests.async_helpers import RECORDER


@pytest.fixture
def push_world(tmp_path):
    """A real Runner with two recorder functions ("thumbs", "audit") writing what they receive
    under a records directory, and the Triggers and Topics services over one push store:
    (runner, triggers, topics, records_dir). Used by tests/unit/topics and tests/unit/triggers,
    which both check deliveries as async invocations of the recorder guest."""
    r = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    for name in ("thumbs", "audit"):
        r.deploy(name, RECORDER, runtime="python", handler="app.handler",
                 environment={"RECORD_DIR": str(rec_dir)})
    store = SQLitePushStore(r.data_dir)
    yield r, Triggers(store, r), Topics(store, r), str(rec_dir)
    store.close()
    r.close()
