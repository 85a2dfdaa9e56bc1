import io
import threading
import zipfile

import pytest

from runner.errors import InvalidParameter, ResourceNotFound
from runner.model import FunctionConfig
from runner.storage.functions import SQLiteRegistry


def code(text="def handler(e, c): return 1"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", text)
    return buf.getvalue()


CFG = FunctionConfig("python", "app.handler")


@pytest.fixture
def reg(tmp_path):
    r = SQLiteRegistry(str(tmp_path))
    yield r
    r.close()


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


def test_survives_reopen(tmp_path):
    r = SQLiteRegistry(str(tmp_path))
    r.deploy("f", CFG.with_changes(memory_mb=1024), code())
    r.close()
    r2 = SQLiteRegistry(str(tmp_path))
    assert r2.resolve("f").config.memory_mb == 1024
    r2.close()


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
