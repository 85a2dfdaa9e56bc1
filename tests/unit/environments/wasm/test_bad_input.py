"""Untrusted code packages: each is refused at deploy (prepare) with the field and the fix, and
nothing else breaks."""

from __future__ import annotations

import json
import os

import pytest

from runner.errors import InvalidCodePackage
from tests.unit.environments.wasm.wasm_support import deploy, guest_bytes, invoke, new_backend, started


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-bad"), max_module_bytes=64 * 1024)
    yield b
    b.close()


def refused(backend, version) -> InvalidCodePackage:
    with pytest.raises(InvalidCodePackage) as info:
        backend.prepare(version)
    # create() prepares too, so no environment can ever be made from bad code
    with pytest.raises(InvalidCodePackage):
        backend.create(version)
    return info.value


@pytest.fixture(autouse=True)
def backend_still_serves(backend, tmp_path):
    yield
    # A generous timeout: this checks that the backend still serves, not how fast (CI shares
    # the host); a failure shows the error the call got.
    env = started(backend, deploy(tmp_path, "hello", timeout_s=60))
    out = invoke(env)
    assert out.error is None, out.error.to_document()
    assert json.loads(out.payload) == {"message": "hello from wasm"}
    env.destroy()


def test_garbage_bytes(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, os.urandom(4096)))
    assert err.field == "code" and "not a WebAssembly binary" in err.message


def test_truncated_module(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, guest_bytes("hello")[:40]))
    assert err.field == "code" and "not a valid WebAssembly module" in err.message


def test_unknown_import(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, "unknown_import"))
    assert "env.host_secret" in err.message and "wasi_snapshot_preview1" in err.message


def test_unknown_wasi_function(backend, tmp_path):
    wat = """(module (import "wasi_snapshot_preview1" "no_such_call" (func))
                     (func (export "_start")))"""
    err = refused(backend, deploy(tmp_path, wat))
    assert err.field == "code" and "no_such_call" in err.message


def test_module_over_the_size_limit(backend, tmp_path):
    blob = "(module (memory 1) (data (i32.const 0) \"" + "a" * 70000 + "\") (func (export \"_start\")))"
    err = refused(backend, deploy(tmp_path, blob))
    assert "over the 65536-byte limit" in err.message


def test_start_function_that_traps(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, "start_trap"))
    assert "start function" in err.message and "unreachable" in err.message


def test_minimum_memory_over_memory_mb_names_memory_mb(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, "big_memory", memory_mb=128))
    assert err.field == "memory_mb" and "raise memory_mb" in err.message
    # the same module deploys with enough memory
    backend.prepare(deploy(tmp_path, "big_memory", memory_mb=512))


def test_missing_module_file(backend, tmp_path):
    version = deploy(tmp_path, "hello")
    os.unlink(os.path.join(version.code_dir, "function.wasm"))
    err = refused(backend, version)
    assert "function.wasm" in err.message


def test_component_binary_is_refused_with_an_explanation(backend, tmp_path):
    component = b"\0asm\x0d\x00\x01\x00"
    err = refused(backend, deploy(tmp_path, component))
    assert "component" in err.message


def test_command_without_start_export(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, "counter", "_start"))
    assert err.field == "handler" and "'_start'" in err.message


def test_reactor_handler_not_exported(backend, tmp_path):
    err = refused(backend, deploy(tmp_path, "counter", "process"))
    assert err.field == "handler" and "'process'" in err.message


def test_reactor_handler_with_wrong_signature(backend, tmp_path):
    wat = """(module (memory (export "memory") 1)
               (func (export "alloc") (param i32) (result i32) (i32.const 0))
               (func (export "handle") (param i32) (result i32) (i32.const 0)))"""
    err = refused(backend, deploy(tmp_path, wat, "handle"))
    assert "expected (i32, i32) -> (i64)" in err.message


def test_reactor_without_memory_export(backend, tmp_path):
    wat = """(module (memory 1)
               (func (export "alloc") (param i32) (result i32) (i32.const 0))
               (func (export "handle") (param i32 i32) (result i64) (i64.const 0)))"""
    err = refused(backend, deploy(tmp_path, wat, "handle"))
    assert "'memory'" in err.message
