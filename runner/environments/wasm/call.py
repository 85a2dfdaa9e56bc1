"""Calls into a reactor's `alloc` and handler exports without wasmtime-py's generic `Func.__call__`.

Why: `Func.__call__` looks the function's type up and converts each argument through
wasmtime's type objects on every call, about 25 foreign calls for one alloc + handle. ctypes
releases and re-takes the GIL around every foreign call, and with several invocations in flight
on the server's threads each re-take can wait for another thread: at 8 concurrent wasm
invocations that hand-off traffic, not the guest, bounded the throughput
(docs/decisions/024-wasm-cpu-share.md, "Invocation path"). The reactor ABI fixes both
signatures (alloc: i32 -> i32, handler: (i32, i32) -> i64; abi.py checks them when the
version is prepared), so one call here is one `wasmtime_func_call` on value arrays allocated
once per environment.

This uses wasmtime-py's ffi bindings, which are not its public API: pyproject pins wasmtime to
one major version, and tests/unit/environments/wasm/test_call.py compares every result, trap and
exit with `Func.__call__`.
"""

from __future__ import annotations

from ctypes import POINTER, byref

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import _func

# (value kind, field of wasmtime_valunion) per wasm value type this module passes.
_I32 = (ffi.WASMTIME_I32, "i32")
_I64 = (ffi.WASMTIME_I64, "i64")


class TypedCall:
    """One export with a fixed signature of i32/i64 values, callable as `call(store, *args)`.

    Not thread-safe: the argument and result arrays are reused, so one environment's calls
    must not overlap (they never do: an environment runs one invocation at a time)."""

    def __init__(self, func: wasmtime.Func, params: tuple, result: tuple) -> None:
        self._func = func._func  # the wasmtime_func_t handle Func.__call__ passes too
        self._fields = tuple(field for _, field in params)
        self._params = (ffi.wasmtime_val_t * len(params))()
        for slot, (kind, _) in zip(self._params, params):
            slot.kind = kind
        self._results = (ffi.wasmtime_val_t * 1)()
        self._results[0].kind = result[0]
        self._result_field = result[1]

    def __call__(self, store: wasmtime.Store, *args: int) -> int:
        params = self._params
        for slot, field, value in zip(params, self._fields, args):
            setattr(slot.of, field, value)
        trap = POINTER(ffi.wasm_trap_t)()
        error = ffi.wasmtime_func_call(store._context(), byref(self._func), params, len(params),
                                       self._results, 1, byref(trap))
        # The same order of checks as Func.__call__: an error (proc_exit's ExitTrap among
        # them) first, then a trap; a Python exception raised by a host function (WASI is
        # native, but a linker may add Python ones) is re-raised in place of either.
        if error:
            failure = wasmtime.WasmtimeError._from_ptr(error)  # owns (and frees) the error
            _func.maybe_raise_last_exn()
            raise failure
        if trap:
            raised = wasmtime.Trap._from_ptr(trap)
            _func.maybe_raise_last_exn()
            raise raised
        return getattr(self._results[0].of, self._result_field)


def alloc_call(func: wasmtime.Func) -> TypedCall:
    """`alloc(size: i32) -> ptr: i32`."""
    return TypedCall(func, (_I32,), _I32)


def handler_call(func: wasmtime.Func) -> TypedCall:
    """`handle(ptr: i32, len: i32) -> i64`."""
    return TypedCall(func, (_I32, _I32), _I64)
