"""The on-disk compiled-module cache: reuse across backends (a server restart), integrity."""

from __future__ import annotations

import glob
import hashlib
import json
import os

from tests.unit.environments.wasm.wasm_support import deploy, guest_bytes, invoke, new_backend, started


def cache_entries(cache_dir):
    return sorted(glob.glob(os.path.join(cache_dir, "*.cwasm")))


def test_second_backend_loads_instead_of_compiling(tmp_path):
    cache = str(tmp_path / "cache")
    version = deploy(tmp_path, "hello")
    first = new_backend(tmp_path / "a", cache_dir=cache)
    first.prepare(version)
    assert (first.cache.stats.misses, first.cache.stats.hits) == (1, 0)
    first.close()
    [artifact] = cache_entries(cache)
    digest = hashlib.sha256(guest_bytes("hello")).hexdigest()
    assert os.path.basename(artifact).startswith(digest)
    with open(artifact.replace(".cwasm", ".sha256")) as f:
        with open(artifact, "rb") as a:
            assert f.read().strip() == hashlib.sha256(a.read()).hexdigest()

    second = new_backend(tmp_path / "b", cache_dir=cache)
    env = started(second, version)
    assert (second.cache.stats.misses, second.cache.stats.hits) == (0, 1)
    assert json.loads(invoke(env).payload) == {"message": "hello from wasm"}
    env.destroy()
    second.close()


def test_corrupted_entry_is_detected_and_rebuilt(tmp_path):
    cache = str(tmp_path / "cache")
    version = deploy(tmp_path, "echo")
    first = new_backend(tmp_path / "a", cache_dir=cache)
    first.prepare(version)
    first.close()
    [artifact] = cache_entries(cache)
    with open(artifact, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF  # one flipped bit in the compiled code
    with open(artifact, "wb") as f:
        f.write(data)

    second = new_backend(tmp_path / "b", cache_dir=cache)
    env = started(second, version)
    assert second.cache.stats.corrupt == 1 and second.cache.stats.misses == 1
    assert json.loads(invoke(env, b'{"ok": true}').payload) == {"ok": True}
    env.destroy()
    second.close()
    # the entry was rewritten and now verifies
    third = new_backend(tmp_path / "c", cache_dir=cache)
    third.prepare(version)
    assert (third.cache.stats.hits, third.cache.stats.corrupt) == (1, 0)
    third.close()


def test_missing_checksum_is_a_miss_not_a_blind_load(tmp_path):
    cache = str(tmp_path / "cache")
    version = deploy(tmp_path, "hello")
    first = new_backend(tmp_path / "a", cache_dir=cache)
    first.prepare(version)
    first.close()
    [artifact] = cache_entries(cache)
    os.unlink(artifact.replace(".cwasm", ".sha256"))
    second = new_backend(tmp_path / "b", cache_dir=cache)
    second.prepare(version)
    assert (second.cache.stats.hits, second.cache.stats.misses) == (0, 1)
    second.close()


def test_engine_configuration_is_part_of_the_key(tmp_path):
    cache = str(tmp_path / "cache")
    version = deploy(tmp_path, "hello")
    plain = new_backend(tmp_path / "a", cache_dir=cache)
    fueled = new_backend(tmp_path / "b", cache_dir=cache, fuel=True)
    assert plain.cache.fingerprint != fueled.cache.fingerprint
    plain.prepare(version)
    fueled.prepare(version)
    assert fueled.cache.stats.misses == 1  # never handed an artifact compiled without fuel
    assert len(cache_entries(cache)) == 2
    plain.close()
    fueled.close()


def test_a_new_revision_of_the_same_module_reuses_the_loaded_module(tmp_path):
    b = new_backend(tmp_path, cache_dir=str(tmp_path / "cache"))
    first, second = deploy(tmp_path, "echo"), deploy(tmp_path, "echo")
    assert first.key != second.key
    b.prepare(first)
    b.prepare(second)
    assert (b.cache.stats.misses, b.cache.stats.hits, b.cache.stats.memory_hits) == (1, 0, 1)
    env = started(b, second)
    assert json.loads(invoke(env, b"[2]").payload) == [2]
    env.destroy()
    b.close()
