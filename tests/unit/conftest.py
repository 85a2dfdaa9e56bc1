"""Fixtures shared by unit-test packages that drive a real Runner the same way."""

import pytest

from runner import Runner
from runner.topics.service import Topics
from runner.triggers.service import Triggers
from tests.async_helpers import RECORDER


@pytest.fixture
def push_world(tmp_path):
    """A real Runner with two recorder functions ("thumbs", "audit") writing what they receive
    under a records directory, and the Triggers and Topics services over one push store:
    (runner, triggers, topics, records_dir). Used by tests/unit/topics and tests/unit/triggers,
    which both check deliveries as async invocations of the recorder guest. The push store is
    the Runner's own (State.push), as service/push.py takes it."""
    r = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    for name in ("thumbs", "audit"):
        r.deploy(name, RECORDER, runtime="python", handler="app.handler",
                 environment={"RECORD_DIR": str(rec_dir)})
    store = r.state.push
    yield r, Triggers(store, r), Topics(store, r), str(rec_dir)
    r.close()
