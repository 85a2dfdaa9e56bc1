"""Hostile WebAssembly guests: each fails as a function or deploy error; the backend survives."""

from __future__ import annotations

import json

import pytest

from runner.errors import InvalidCodePackage
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-hostile"))
    yield b
    b.close()


@pytest.fixture(autouse=True)
def backend_still_serves(backend, tmp_path):
    yield
    env = started(backend, deploy(tmp_path, "hello"))
    assert json.loads(invoke(env).payload) == {"message": "hello from wasm"}
    env.destroy()


def test_unbounded_recursion_is_a_stack_overflow_trap(backend, tmp_path):
    wat = """(module (memory (export "memory") 1)
               (func $down (param i64) (result i64)
                 (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
               (func (export "_start") (drop (call $down (i64.const 0)))))"""
    env = started(backend, deploy(tmp_path, wat))
    out = invoke(env)
    assert out.error.error_type == "Runtime.WasmTrap"
    assert "stack_overflow" in out.error.message
    env.destroy()


def test_huge_table_is_refused_at_deploy(backend, tmp_path):
    wat = """(module (table 50000000 funcref) (func (export "_start")))"""
    with pytest.raises(InvalidCodePackage) as info:
        backend.prepare(deploy(tmp_path, wat))
    assert "cannot be instantiated" in info.value.message


def test_reactor_claiming_a_response_over_6mb(backend, tmp_path):
    wat = """(module (memory (export "memory") 200)
               (func (export "alloc") (param i32) (result i32) (i32.const 1024))
               (func (export "handle") (param i32 i32) (result i64)
                 (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 7000000))))"""
    env = started(backend, deploy(tmp_path, wat, "handle"))
    out = invoke(env)
    assert out.error.error_type == "Function.ResponseSizeTooLarge"
    env.destroy()


def test_memory_grow_in_a_reactor_is_capped_and_the_environment_retired(backend, tmp_path):
    wat = """(module (memory (export "memory") 1)
               (func (export "alloc") (param i32) (result i32) (i32.const 1024))
               (func (export "handle") (param i32 i32) (result i64)
                 (loop $more (br_if $more (i32.ne (memory.grow (i32.const 64)) (i32.const -1))))
                 unreachable))"""
    env = started(backend, deploy(tmp_path, wat, "handle", memory_mb=128))
    out = invoke(env)
    assert out.error.error_type == "Runtime.OutOfMemory"
    assert not out.reusable
