import io
import threading
import time
import uuid
import zipfile

import pytest

from runner import errors as err
from runner.errors import InvalidParameter, ResourceConflict, ResourceNotFound
from runner.model import FunctionConfig
from runner.storage.functions import SQLiteRegistry


def code(text="def handler(e, c): return 1"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", text)
    return buf.getvalue()


CFG = FunctionConfig("python", "app.handler")


@pytest.fixture
def reg(state):
    return state.registry()  # closed by the state fixture


def test_deploy_resolve_and_revisions(reg):
    v1 = reg.deploy("f", CFG, code())
    v2 = reg.deploy("f", CFG.with_changes(memory_mb=256), None)
    assert v2.revision > v1.revision and v2.code_sha256 == v1.code_sha256
    assert reg.resolve("f").config.memory_mb == 256
    assert reg.resolve("f", "$LATEST") == reg.resolve("f")


def test_first_deploy_needs_code_and_runtime_change_needs_code(reg):
    with pytest.raises(InvalidParameter, match="^code:"):
        reg.deploy("f", CFG, None)
    reg.deploy("f", CFG, code())
    with pytest.raises(InvalidParameter, match="^runtime:"):
        reg.deploy("f", FunctionConfig("nodejs", "index.handler"), None)


def test_validate_hook_aborts_with_nothing_changed(reg):
    reg.deploy("f", CFG, code())
    before = reg.resolve("f")

    def refuse(version):
        assert version.revision == 0 and version.code_dir.endswith(version.code_sha256)
        raise InvalidParameter("handler", "nope")

    with pytest.raises(InvalidParameter):
        reg.deploy("f", CFG.with_changes(memory_mb=512), code("x = 2"), validate=refuse)
    assert reg.resolve("f") == before


def test_publish_and_versions(reg):
    reg.deploy("f", CFG, code())
    v1 = reg.publish("f")
    assert v1.version == "1" and reg.publish("f").version == "1"  # unchanged -> same version
    reg.deploy("f", CFG.with_changes(timeout_s=9), None)
    v2 = reg.publish("f")
    assert v2.version == "2" and reg.resolve("f", "1").config.timeout_s == 3
    assert [v.version for v in reg.list_versions("f")] == ["$LATEST", "1", "2"]
    assert reg.published_revisions("f") == {v1.revision, v2.revision}
    with pytest.raises(ResourceNotFound, match="no version or alias 'prod'"):
        reg.resolve("f", "prod")
    with pytest.raises(ResourceNotFound):
        reg.resolve("f", "7")


def test_delete_and_unreferenced_code(reg):
    v = reg.deploy("f", CFG, code())
    reg.deploy("g", CFG, code())  # same code: shared digest
    assert len(reg.delete("f")) == 1
    with pytest.raises(ResourceNotFound):
        reg.resolve("f")
    assert reg.unreferenced_code() == set()
    reg.delete("g")
    assert reg.unreferenced_code() == {v.code_sha256}


def test_survives_reopen(state):
    r = state.registry()
    r.deploy("f", CFG.with_changes(memory_mb=1024), code())
    r.close()
    r2 = state.registry()
    assert r2.resolve("f").config.memory_mb == 1024


def test_concurrency_reserved_is_stored_and_old_configs_load_unreserved(state):
    r = state.registry()
    r.deploy("f", CFG.with_changes(concurrency=2, concurrency_reserved=True), code())
    r.deploy("g", CFG, code())
    r.close()
    r2 = state.registry()
    assert r2.resolve("f").config.concurrency_reserved  # decision 079
    assert not r2.resolve("g").config.concurrency_reserved
    old = {k: v for k, v in CFG.to_dict().items() if k != "concurrency_reserved"}
    assert FunctionConfig.from_dict(old).concurrency_reserved is False


def test_concurrent_deploys_get_distinct_revisions(reg):
    revs = []
    threads = [threading.Thread(target=lambda i=i: revs.append(reg.deploy(f"f{i % 3}", CFG, code(str(i))).revision))
               for i in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(revs)) == 12 and len(reg.list_functions()) == 3


@pytest.mark.parametrize("qualifier", ["01", "\u00b2", "\u0661", "\uff11", "99999999999999999999999"])
def test_only_canonical_ascii_version_numbers_resolve(reg, qualifier):
    # "01" and Unicode digits are not version 1's label; a huge number is not an SQLite error.
    reg.deploy("f", CFG, code())
    reg.publish("f")
    assert reg.resolve("f", "1").version == "1"
    with pytest.raises(ResourceNotFound, match="has no version"):
        reg.resolve("f", qualifier)


# Optimistic concurrency (issue 17, item 1; docs/decisions/046-optimistic-concurrency.md).


def test_partial_updates_are_merged_under_the_lock(reg):
    # Each writer hands the registry a merge of its own field; a slow validate keeps every
    # writer waiting on the lock at once. None may be lost: each merge sees the one before.
    reg.deploy("f", CFG, code())
    start = threading.Barrier(6)
    failures = []

    def update(i):
        start.wait()
        try:
            reg.deploy("f", lambda cur: cur.with_changes(environment={**cur.environment, f"K{i}": "v"}),
                       None, validate=lambda v: time.sleep(0.02))
        except Exception as exc:  # reported below: a thread's exception is lost otherwise
            failures.append(exc)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert failures == []
    assert reg.resolve("f").config.environment == {f"K{i}": "v" for i in range(6)}


def test_the_merge_sees_none_when_creating(reg):
    seen = []
    reg.deploy("f", lambda cur: seen.append(cur) or CFG, code())
    assert seen == [None] and reg.resolve("f").config == CFG


def test_revision_id_changes_with_every_change_and_survives_reopen(state):
    r = state.registry()
    v1 = r.deploy("f", CFG, code())
    first = r.revision_id(v1)
    assert str(uuid.UUID(first)) == first  # Lambda's RevisionId is a UUID
    assert r.revision_id(r.resolve("f")) == first  # the same state, the same id
    v2 = r.deploy("f", CFG.with_changes(memory_mb=256), None)
    second = r.revision_id(v2)
    assert second != first
    assert r.revision_id(v1) == first  # an older revision keeps its own (stale) id
    published = r.publish("f")
    third = r.revision_id(r.resolve("f"))
    assert third not in (first, second), "publishing changes the function's revision id"
    assert r.revision_id(published) == third
    assert r.revision_id(r.publish("f")) == third  # nothing new to publish: nothing changed
    r.close()
    r2 = state.registry()
    assert r2.revision_id(r2.resolve("f")) == third
    assert r2.revision_id(r2.resolve("f", "1")) == third


def test_a_stale_revision_id_is_refused_and_the_current_one_accepted(reg):
    v1 = reg.deploy("f", CFG, code())
    stale = reg.revision_id(v1)
    v2 = reg.deploy("f", CFG.with_changes(memory_mb=256), None, revision_id=stale)
    with pytest.raises(err.PreconditionFailed, match="^revision_id: ") as info:
        reg.deploy("f", CFG.with_changes(memory_mb=512), None, revision_id=stale)
    assert "get the function again" in str(info.value)
    assert reg.resolve("f") == v2  # nothing changed
    with pytest.raises(err.PreconditionFailed):
        reg.publish("f", revision_id=stale)
    assert reg.list_versions("f") == [v2]
    v3 = reg.deploy("f", CFG.with_changes(memory_mb=512), None, revision_id=reg.revision_id(v2))
    assert v3.config.memory_mb == 512
    assert reg.publish("f", revision_id=reg.revision_id(v3)).version == "1"
    with pytest.raises(err.PreconditionFailed, match="does not exist"):
        reg.deploy("g", CFG, code(), revision_id=stale)
    with pytest.raises(ResourceNotFound):
        reg.revision_id(v3.__class__(**{**v3.__dict__, "revision": 10**6}))


def test_a_second_update_while_one_is_in_progress_is_a_conflict(reg):
    with reg.updating("f"):
        with pytest.raises(ResourceConflict, match="update is in progress"):
            with reg.updating("f"):
                pass
        with reg.updating("g"):  # per function, not global
            pass
    with reg.updating("f"):  # released when the first ended
        pass
    with pytest.raises(RuntimeError):
        with reg.updating("f"):
            raise RuntimeError("an update that fails releases its claim too")
    with reg.updating("f"):
        pass


def test_a_registry_from_before_revision_ids_gains_them_once(tmp_path):
    import sqlite3

    from runner.storage import functions

    r = SQLiteRegistry(str(tmp_path))
    r.deploy("f", CFG, code())
    r.close()
    db = sqlite3.connect(str(tmp_path / "registry.db"))
    db.execute("ALTER TABLE revisions DROP COLUMN revision_id")  # as written before them
    db.commit()
    db.close()
    assert "revision_id" in functions.SCHEMA
    r = SQLiteRegistry(str(tmp_path))
    try:
        first = r.revision_id(r.resolve("f"))
        assert str(uuid.UUID(first)) == first
    finally:
        r.close()
    r = SQLiteRegistry(str(tmp_path))
    try:
        assert r.revision_id(r.resolve("f")) == first  # stored, not made up at each start
    finally:
        r.close()


def test_delete_version_removes_one_published_version(reg):
    reg.deploy("f", CFG, code())
    reg.publish("f")
    reg.deploy("f", CFG.with_changes(memory_mb=256), None)
    reg.publish("f")
    assert reg.delete_version("f", "1").version == "1"
    with pytest.raises(ResourceNotFound):
        reg.resolve("f", "1")
    assert [v.version for v in reg.list_versions("f")] == ["$LATEST", "2"]
    with pytest.raises(InvalidParameter, match="^Qualifier:"):
        reg.delete_version("f", "prod")
    with pytest.raises(ResourceNotFound):
        reg.delete_version("f", "7")
