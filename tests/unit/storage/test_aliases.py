"""The AliasStore contract (runner/storage/aliases.py, storage/postgres/aliases.py), on SQLite
and PostgreSQL alike (the `state` fixture, tests/state_fixtures.py), and what only the shared
state has: several nodes writing and resolving the same aliases."""

from __future__ import annotations

import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.errors import InvalidParameter, PreconditionFailed, ResourceConflict, ResourceNotFound
from runner.model import FunctionConfig


def deploy_three_versions(registry, name: str = "fn") -> None:
    cfg = FunctionConfig("python", "app.handler")
    for tag in ("a", "b", "c"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", f"# {tag}\n")
        registry.deploy(name, cfg, buf.getvalue())
        registry.publish(name)  # versions 1, 2, 3


@pytest.fixture
def stores(state):
    registry = state.registry()
    deploy_three_versions(registry)
    return registry, state.aliases(registry)


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
    with pytest.raises(ResourceNotFound):
        aliases.list("nope")


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
    with pytest.raises(ResourceNotFound):
        aliases.update("fn", "live", version="9")
    c = aliases.update("fn", "live", weights={"3": 0.5})
    assert dict(c.weights) == {"3": 0.5} and c.version == "2"
    assert dict(aliases.update("fn", "live", weights={}).weights) == {}
    aliases.delete("fn", "live")
    assert aliases.get_cached("fn", "live") is None
    with pytest.raises(ResourceNotFound):
        aliases.get("fn", "live")
    with pytest.raises(ResourceNotFound):
        aliases.delete("fn", "live")
    with pytest.raises(ResourceNotFound):
        aliases.update("fn", "live", version="1")


def test_survives_reopen(state, stores):
    registry, aliases = stores
    aliases.create("fn", "live", "1", {"2": 0.3})
    registry.close()
    again = state.registry()
    assert dict(state.aliases(again).get("fn", "live").weights) == {"2": 0.3}


def test_a_function_delete_removes_its_aliases(state, stores):
    registry, aliases = stores
    aliases.create("fn", "live", "1", {"2": 0.5})
    assert aliases.get_cached("fn", "live").version == "1"
    registry.delete("fn")
    aliases.forget("fn")  # as Runner.delete does
    assert aliases.get_cached("fn", "live") is None
    with pytest.raises(ResourceNotFound):
        aliases.get("fn", "live")
    with pytest.raises(ResourceNotFound):
        aliases.list("fn")
    deploy_three_versions(registry)  # a new function of the same name starts with none
    assert aliases.list("fn") == []
    with pytest.raises(ResourceNotFound):
        registry.resolve("fn", "live")


# ---------------------------------------------------------------------- several nodes


def wait_until(predicate, what: str, within_s: float = 2.0) -> None:
    """The 2 s bound the issue sets for another node to see a write (GENERATION_CHECK_S is 1)."""
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, f"node B still does not see {what} after {within_s} s"
        time.sleep(0.05)


def test_an_alias_written_on_one_node_is_resolved_by_another_within_2_s(pg_state, tmp_path):
    reg_a = pg_state.registry(str(tmp_path / "a"))
    reg_b = pg_state.registry(str(tmp_path / "b"))
    deploy_three_versions(reg_a)
    a, b = pg_state.aliases(reg_a), pg_state.aliases(reg_b)
    with pytest.raises(ResourceNotFound):
        reg_b.resolve("fn", "live")
    assert b.get_cached("fn", "live") is None  # cached as absent on B, until a write
    a.create("fn", "live", "1")
    wait_until(lambda: b.get_cached("fn", "live") is not None, "the new alias")
    assert reg_b.resolve("fn", "live").version == "1"
    a.update("fn", "live", version="2", weights={"3": 0.25})
    wait_until(lambda: reg_b.resolve("fn", "live").version == "2", "the alias's new version")
    wait_until(lambda: dict(b.get_cached("fn", "live").weights) == {"3": 0.25},
               "the alias's weights")
    b.delete("fn", "live")
    wait_until(lambda: a.get_cached("fn", "live") is None, "the delete")


def test_concurrent_updates_with_one_revision_id_on_two_nodes_apply_once(pg_state, tmp_path):
    reg_a = pg_state.registry(str(tmp_path / "a"))
    reg_b = pg_state.registry(str(tmp_path / "b"))
    deploy_three_versions(reg_a)
    a, b = pg_state.aliases(reg_a), pg_state.aliases(reg_b)
    rid = a.create("fn", "live", "1").revision_id

    def update(store, version):
        try:
            return store.update("fn", "live", version=version, revision_id=rid)
        except PreconditionFailed:
            return None

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(update, (a, b), ("2", "3")))
    won = [r for r in results if r is not None]
    assert len(won) == 1 and a.get("fn", "live").version == won[0].version


def test_a_version_an_alias_names_is_not_deleted_from_another_node(pg_state, tmp_path):
    """Runner.delete_version checks the aliases first; the registry checks again under the
    function's lock, so an alias made meanwhile through another node is not left dangling."""
    reg_a = pg_state.registry(str(tmp_path / "a"))
    reg_b = pg_state.registry(str(tmp_path / "b"))
    deploy_three_versions(reg_a)
    pg_state.aliases(reg_b).create("fn", "live", "1", {"2": 0.5})
    for version in ("1", "2"):
        with pytest.raises(ResourceConflict, match="live"):
            reg_a.delete_version("fn", version)
    assert reg_a.delete_version("fn", "3").version == "3"
