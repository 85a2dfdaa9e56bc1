"""The layer store's contract (runner/storage/layers.py) over SQLite and PostgreSQL, and what
only the shared store has: a layer published through one node used on another, version
numbers unique across nodes publishing at once, content fetched and verified on demand."""

from __future__ import annotations

import io
import os
import threading
import zipfile

import pytest

from runner.errors import CorruptBlob, InvalidCodePackage, InvalidParameter, ResourceNotFound


def layer_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def arn(name: str, version: int) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:layer:{name}:{version}"


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_publish_numbers_get_list_delete(state):
    layers = state.layers()
    one = layers.publish("util", layer_zip({"python/u.py": b"V = 1"}), description="first",
                         compatible_runtimes=("python3.12",), license="MIT")
    two = layers.publish("util", layer_zip({"python/u.py": b"V = 2"}))
    layers.publish("other", layer_zip({"o.txt": b"o"}))
    assert (one.version, two.version) == (1, 2)
    got = layers.get("util", 1)
    assert (got.description, got.compatible_runtimes, got.license) == (
        "first", ("python3.12",), "MIT")
    assert got.code_sha256 == one.code_sha256 and got.code_size == one.code_size
    assert [v.version for v in layers.list_versions("util")] == [2, 1]
    assert [(lv.name, lv.version) for lv in layers.list_layers()] == [("other", 1), ("util", 2)]
    layers.delete("util", 2)
    layers.delete("util", 2)  # idempotent
    with pytest.raises(ResourceNotFound, match="deleted"):
        layers.get("util", 2)
    assert layers.get_any("util", 2).version == 2  # functions using it still mount it
    assert [(lv.name, lv.version) for lv in layers.list_layers()] == [("other", 1), ("util", 1)]
    # Numbers are never reused: the next publish after a delete is 3.
    assert layers.publish("util", layer_zip({"python/u.py": b"V = 3"})).version == 3
    with pytest.raises(ResourceNotFound, match="publish it first"):
        layers.get("util", 9)


def test_bad_input_stores_nothing(state):
    layers = state.layers()
    with pytest.raises(InvalidParameter, match="LayerName"):
        layers.publish("no spaces", layer_zip({"a": b"a"}))
    with pytest.raises(InvalidParameter, match="Description"):
        layers.publish("ok", layer_zip({"a": b"a"}), description="x" * 257)
    with pytest.raises(InvalidCodePackage):
        layers.publish("ok", b"not a zip")
    with pytest.raises(InvalidCodePackage, match="escapes"):
        layers.publish("ok", layer_zip({"../evil": b"x"}))
    assert layers.list_layers() == [] and layers.list_versions("ok") == []


def test_opt_dir_merges_in_order(state):
    layers = state.layers()
    layers.publish("base", layer_zip({"python/a.py": b"base", "bin/tool": b"t"}))
    layers.publish("over", layer_zip({"python/a.py": b"over", "python/b.py": b"b"}))
    assert layers.opt_dir(()) == ""
    opt = layers.opt_dir((arn("base", 1), arn("over", 1)))
    assert read(os.path.join(opt, "python/a.py")) == b"over"  # the later layer wins
    assert read(os.path.join(opt, "bin/tool")) == b"t"
    assert read(os.path.join(layers.opt_dir((arn("over", 1), arn("base", 1))),
                             "python/a.py")) == b"base"
    assert layers.opt_dir((arn("base", 1), arn("over", 1))) == opt  # built once
    with pytest.raises(ResourceNotFound):
        layers.opt_dir((arn("missing", 1),))


def test_a_layer_published_on_one_node_is_used_on_another(pg_state, tmp_path):
    a = pg_state.layers(data_dir=str(tmp_path / "a"))
    b = pg_state.layers(data_dir=str(tmp_path / "b"))
    published = a.publish("shared", layer_zip({"python/s.py": b"S = 1"}))
    seen = b.get("shared", 1)
    assert seen.code_sha256 == published.code_sha256
    assert not os.path.exists(seen.path)  # B has not needed its content yet
    opt = b.opt_dir((arn("shared", 1),))
    assert opt.startswith(str(tmp_path / "b"))  # extracted into B's own cache
    assert read(os.path.join(opt, "python/s.py")) == b"S = 1"
    assert [lv.name for lv in b.list_layers()] == ["shared"]
    b.delete("shared", 1)
    with pytest.raises(ResourceNotFound):
        a.get("shared", 1)


def test_concurrent_publishes_on_two_nodes_get_distinct_numbers(pg_state, tmp_path):
    nodes = [pg_state.layers(data_dir=str(tmp_path / n)) for n in ("a", "b")]
    got, errors = [], []

    def publish(i: int) -> None:
        try:
            got.append(nodes[i % 2].publish("race", layer_zip({"n": str(i).encode()})).version)
        except Exception as exc:  # reported below: a duplicate number would land here
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, 9))


def test_a_damaged_layer_blob_is_never_extracted(pg_state, tmp_path):
    registry = pg_state.registry(str(tmp_path / "a"))
    a = pg_state.layers(registry, data_dir=str(tmp_path / "a"))
    b = pg_state.layers(data_dir=str(tmp_path / "b"))
    lv = a.publish("bad", layer_zip({"x.txt": b"x"}))
    registry.blobs.db.execute("UPDATE code_blobs SET data = %s WHERE sha256 = %s",
                        (layer_zip({"x.txt": b"y"}), lv.code_sha256))
    with pytest.raises(CorruptBlob):
        b.opt_dir((arn("bad", 1),))
    assert not os.path.exists(b.get("bad", 1).path)
