"""The AliasStore contract (runner/storage/aliases.py), run against every implementation."""

from __future__ import annotations

import io
import zipfile

import pytest

from runner.errors import InvalidParameter, PreconditionFailed, ResourceConflict, ResourceNotFound
from runner.model import FunctionConfig
from runner.storage.aliases import SQLiteAliasStore
from runner.storage.functions import SQLiteRegistry

IMPLEMENTATIONS = ["sqlite"]


@pytest.fixture(params=IMPLEMENTATIONS)
def stores(request, tmp_path):
    registry = SQLiteRegistry(str(tmp_path / "data"))
    cfg = FunctionConfig("python", "app.handler")
    for tag in ("a", "b", "c"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", f"# {tag}\n")
        registry.deploy("fn", cfg, buf.getvalue())
        registry.publish("fn")  # versions 1, 2, 3
    yield registry, SQLiteAliasStore(registry)
    registry.close()


def test_create_get_list(stores):
    registry, aliases = stores
    a = aliases.create("fn", "live", "1", {"2": 0.2}, "prod")
    assert (a.version, dict(a.weights), a.description) == ("1", {"2": 0.2}, "prod")
    assert a.revision_id and aliases.get("fn", "live") == a
    aliases.create("fn", "beta", "3")
    assert [x.name for x in aliases.list("fn")] == ["beta", "live"]
    assert [x.name for x in aliases.list("fn", "2")] == ["live"]  # routes there by weight
    assert aliases.referencing("fn", "3") == ["beta"]
    assert registry.resolve("fn", "live").version == "1"


@pytest.mark.parametrize("args, error", [
    (("fn", "123", "1"), InvalidParameter),  # digits name versions
    (("fn", "bad name", "1"), InvalidParameter),
    (("fn", "x", "$LATEST"), InvalidParameter),
    (("fn", "x", "9"), ResourceNotFound),
    (("fn", "x", "1", {"1": 0.5}), InvalidParameter),  # its own version
    (("fn", "x", "1", {"2": 1.5}), InvalidParameter),
    (("fn", "x", "1", {"2": 0.1, "3": 0.1}), InvalidParameter),  # one additional version
    (("fn", "x", "1", {"9": 0.1}), ResourceNotFound),
    (("nope", "x", "1"), ResourceNotFound),
])
def test_create_refuses(stores, args, error):
    _, aliases = stores
    with pytest.raises(error):
        aliases.create(*args)
    assert aliases.get_cached("fn", "x") is None


def test_update_with_revision_id_and_delete(stores):
    registry, aliases = stores
    a = aliases.create("fn", "live", "1")
    with pytest.raises(ResourceConflict):
        aliases.create("fn", "live", "2")
    assert aliases.get_cached("fn", "live").version == "1"
    b = aliases.update("fn", "live", version="2", revision_id=a.revision_id)
    assert b.version == "2" and b.revision_id != a.revision_id
    assert aliases.get_cached("fn", "live").version == "2"  # the cache follows writes
    assert registry.resolve("fn", "live").version == "2"
    with pytest.raises(PreconditionFailed):
        aliases.update("fn", "live", version="3", revision_id=a.revision_id)
    c = aliases.update("fn", "live", weights={"3": 0.5})
    assert dict(c.weights) == {"3": 0.5} and c.version == "2"
    assert dict(aliases.update("fn", "live", weights={}).weights) == {}
    aliases.delete("fn", "live")
    assert aliases.get_cached("fn", "live") is None
    with pytest.raises(ResourceNotFound):
        aliases.get("fn", "live")
    with pytest.raises(ResourceNotFound):
        aliases.delete("fn", "live")


def test_survives_reopen(stores, tmp_path):
    registry, aliases = stores
    aliases.create("fn", "live", "1", {"2": 0.3})
    registry.close()
    again = SQLiteRegistry(str(tmp_path / "data"))
    try:
        assert dict(SQLiteAliasStore(again).get("fn", "live").weights) == {"2": 0.3}
    finally:
        again.close()
