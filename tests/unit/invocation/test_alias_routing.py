"""Aliases with weighted routing, resolved per invocation by the Runner (issue 20): the split
over 2,000 invocations is within statistical bounds, and ExecutedVersion names the version
that ran. The fake backend keeps this fast (no processes)."""

from __future__ import annotations

import io
import zipfile

import pytest

from runner import Runner
from runner.environments.fake import FakeBackend
from runner.invocation.lambda_resources import pick_version
from runner.storage.aliases import Alias


def code(tag: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", f"# {tag}\n")
    return buf.getvalue()


@pytest.fixture
def runner(tmp_path):
    r = Runner(str(tmp_path / "data"), backends={"python": FakeBackend()})
    yield r
    r.close()


def test_pick_version_shares():
    a = Alias("fn", "live", "2", {"1": 0.25})
    assert pick_version(a, 0.0) == "1" and pick_version(a, 0.2499) == "1"
    assert pick_version(a, 0.25) == "2" and pick_version(a, 0.999) == "2"
    assert pick_version(Alias("fn", "live", "2"), 0.0) == "2"


def test_weighted_split_over_2000_invocations(runner):
    runner.deploy("fn", code("a"), runtime="python", handler="app.handler")
    runner.publish("fn")
    runner.deploy("fn", code("b"))
    runner.publish("fn")
    runner.create_alias("fn", "live", "2", weights={"1": 0.1})
    n = 2000
    counts = {"1": 0, "2": 0}
    for _ in range(n):
        counts[runner.invoke("fn", b"{}", qualifier="live").executed_version] += 1
    # Binomial(2000, 0.1): mean 200, sd 13.4; +-5 sd fails by chance about once in 1.7 million.
    assert 133 <= counts["1"] <= 267, counts
    assert counts["1"] + counts["2"] == n


def test_alias_without_weights_and_updates_take_effect(runner):
    runner.deploy("fn", code("a"), runtime="python", handler="app.handler")
    runner.publish("fn")
    runner.deploy("fn", code("b"))
    runner.publish("fn")
    runner.create_alias("fn", "live", "1")
    assert runner.invoke("fn", b"{}", qualifier="live").executed_version == "1"
    runner.update_alias("fn", "live", version="2")
    assert runner.invoke("fn", b"{}", qualifier="live").executed_version == "2"
    runner.update_alias("fn", "live", weights={"1": 1.0})
    assert runner.invoke("fn", b"{}", qualifier="live").executed_version == "1"
    runner.delete("fn")  # its aliases go with it, cached ones included
    runner.deploy("fn", code("a"), runtime="python", handler="app.handler")
    runner.publish("fn")
    with pytest.raises(Exception) as info:
        runner.invoke("fn", b"{}", qualifier="live")
    assert type(info.value).__name__ == "ResourceNotFound"
