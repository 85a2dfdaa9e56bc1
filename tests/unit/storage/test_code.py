import io
import os
import zipfile
from pathlib import Path

import pytest

from runner.errors import InvalidCodePackage
from runner.storage.code import WASM_FILE, CodeStore


def zipped(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path):
    return CodeStore(str(tmp_path / "code"))


def test_put_extracts_read_only_and_dedups(store):
    data = zipped({"app.py": "x = 1", "pkg/mod.py": "y = 2"})
    digest, path = store.put(data, "python")
    assert Path(path, "pkg", "mod.py").read_text() == "y = 2"
    assert not os.stat(os.path.join(path, "app.py")).st_mode & 0o222
    assert store.put(data, "python") == (digest, path)
    assert store.digests() == {digest}


def test_wasm_module_stored_as_function_wasm(store):
    module = b"\0asm\x01\x00\x00\x00"
    _, path = store.put(module, "wasm")
    assert Path(path, WASM_FILE).read_bytes() == module
    with pytest.raises(InvalidCodePackage, match="use --runtime wasm"):
        store.put(module, "python")
    with pytest.raises(InvalidCodePackage, match="bad version"):
        store.put(b"\0asm\x09\x00\x00\x00", "wasm")


def test_wasm_zip_must_hold_one_module(store):
    _, path = store.put(zipped({"x/m.wasm": b"\0asm\x01\x00\x00\x00"}), "wasm")
    assert os.path.exists(os.path.join(path, WASM_FILE))
    with pytest.raises(InvalidCodePackage, match="exactly one"):
        store.put(zipped({"a.wasm": b"\0asm\x01\x00\x00\x00", "b.wasm": b"\0asm\x01\x00\x00\x00"}), "wasm")


def test_failed_put_leaves_nothing(store):
    with pytest.raises(InvalidCodePackage):
        store.put(zipped({"ok.py": "1", "../../escape.py": "2"}), "python")
    assert store.digests() == set() and os.listdir(store.staging) == []


def test_limits(store, monkeypatch):
    import runner.storage.code as cs

    monkeypatch.setattr(cs, "MAX_FILES", 2)
    with pytest.raises(InvalidCodePackage, match="2-file limit"):
        store.put(zipped({"a": "1", "b": "2", "c": "3"}), "python")
    monkeypatch.setattr(cs, "MAX_PACKAGE_BYTES", 10)
    with pytest.raises(InvalidCodePackage, match="package limit"):
        store.put(b"x" * 11, "python")


def test_staging_leftovers_are_cleaned(tmp_path):
    root = tmp_path / "code"
    (root / ".staging" / "half").mkdir(parents=True)
    CodeStore(str(root))
    assert os.listdir(root / ".staging") == []


def test_remove(store):
    digest, path = store.put(zipped({"a.py": "1"}), "python")
    store.remove(digest)
    assert not os.path.exists(path)


@pytest.mark.parametrize("files", [
    [("x", "1"), ("x/y", "2")],  # a file and a folder of one name
    [("x/y", "1"), ("x", "2")],
    [("a" * 300, "1")],  # a name longer than the file system allows
])
def test_a_package_that_cannot_be_unpacked_is_invalid_code(store, files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files:
            zf.writestr(name, text)
    with pytest.raises(InvalidCodePackage, match="cannot be unpacked"):
        store.put(buf.getvalue(), "python")
