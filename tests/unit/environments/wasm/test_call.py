"""call.TypedCall (runner/environments/wasm/call.py) against wasmtime-py's own Func.__call__:
same results, same exceptions."""

from __future__ import annotations

import pytest
import wasmtime

from runner.environments.wasm.call import alloc_call, handler_call

WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param $n i32) (result i32) (i32.sub (i32.const 0) (local.get $n)))
  (func (export "pack") (param $p i32) (param $l i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $l))))
  (func (export "trap") (param i32 i32) (result i64) unreachable)
  (func (export "quit") (param $code i32) (param i32) (result i64)
    (call $exit (local.get $code)) (i64.const 0)))
"""


@pytest.fixture
def instance():
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module(engine, wasmtime.wat2wasm(WAT))
    exports = linker.instantiate(store, module).exports(store)
    yield store, exports
    store.close()


@pytest.mark.parametrize("n", [0, 1, 5, 2**31 - 1])
def test_i32_results_match_func_call_signs_included(instance, n):
    store, ex = instance
    assert alloc_call(ex["alloc"])(store, n) == ex["alloc"](store, n)


@pytest.mark.parametrize("ptr,length", [(0, 0), (65536, 28), (2**31 - 1, 2**31 - 1), (-1, 7)])
def test_i64_results_match_func_call(instance, ptr, length):
    store, ex = instance
    fast = handler_call(ex["pack"])
    assert fast(store, ptr, length) == ex["pack"](store, ptr, length)
    assert fast(store, 1, 2) == (1 << 32) | 2  # the arrays are reused: a second call is fresh


def test_a_trap_raises_the_same_trap(instance):
    store, ex = instance
    with pytest.raises(wasmtime.Trap) as slow:
        ex["trap"](store, 1, 2)
    with pytest.raises(wasmtime.Trap) as fast:
        handler_call(ex["trap"])(store, 1, 2)
    assert fast.value.trap_code == slow.value.trap_code == wasmtime.TrapCode.UNREACHABLE


def test_proc_exit_raises_exit_trap_with_the_code(instance):
    store, ex = instance
    with pytest.raises(wasmtime.ExitTrap) as fast:
        handler_call(ex["quit"])(store, 3, 0)
    assert fast.value.code == 3
