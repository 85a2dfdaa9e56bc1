"""The guest ABI of the wasm runtime, host side: what a module must export, how results are
decoded, and how wasmtime's failures become Lambda-style function errors.

The ABI itself is specified for guest authors in docs/guest-abi.md; this module enforces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import wasmtime

from runner.errors import (
    FunctionCrashed,
    FunctionError,
    FunctionOutOfMemory,
    FunctionTimeout,
    HandlerError,
    InvalidCodePackage,
    WasmError,
    WasmTrap,
)
from runner.model import MB

INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit (at least the function's own timeout)
COMMAND_ENTRY = "_start"
MEMORY_EXPORT = "memory"
ALLOC_EXPORT = "alloc"
INIT_EXPORT = "init"
WASI_REACTOR_INIT = "_initialize"  # wasi-libc's constructor runner in reactor builds
WASI_MODULE = "wasi_snapshot_preview1"
FUEL_BUDGET = (1 << 63) - 1  # fuel, when enabled, measures work; the epoch deadline limits it
ERROR_BIT = 1 << 63  # set in a handle result: the bytes are an error document
# A trap with linear memory this close to the cap is reported as out of memory: wasmtime's
# memory.grow fails silently (-1) at the cap and the guest's allocator then aborts, so the trap
# itself carries no "memory" code.
OOM_SLACK_FRACTION = 1 / 16


@dataclass(frozen=True)
class ModuleShape:
    """What a module offers, checked against the ABI at deploy time."""

    kind: str  # "command" | "reactor"
    handler: str
    has_init: bool
    has_initialize: bool


def _func_sig(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def check_shape(module: wasmtime.Module, handler: str) -> ModuleShape:
    """Raise InvalidCodePackage unless `module` implements the ABI for `handler`."""
    exports = {e.name: e.type for e in module.exports}
    for imp in module.imports:
        if imp.module != WASI_MODULE:
            raise InvalidCodePackage(
                "code",
                f"the module imports {imp.module}.{imp.name}, which the runner does not provide; "
                f"a function may import only {WASI_MODULE} (WASI preview 1)",
            )

    def want_func(name: str, sig: tuple, what: str) -> None:
        ty = exports.get(name)
        if not isinstance(ty, wasmtime.FuncType):
            raise InvalidCodePackage(
                "handler" if name == handler else "code",
                f"the module does not export a function {name!r} ({what}); "
                "see docs/guest-abi.md",
            )
        if _func_sig(ty) != sig:
            params, results = _func_sig(ty)
            raise InvalidCodePackage(
                "code",
                f"export {name!r} has type ({', '.join(params)}) -> ({', '.join(results)}), "
                f"expected ({', '.join(sig[0])}) -> ({', '.join(sig[1])}); see docs/guest-abi.md",
            )

    if handler == COMMAND_ENTRY:
        want_func(COMMAND_ENTRY, ((), ()), "the WASI command entry point")
        return ModuleShape("command", handler, False, False)
    if not isinstance(exports.get(MEMORY_EXPORT), wasmtime.MemoryType):
        raise InvalidCodePackage(
            "code", f"a reactor must export its linear memory as {MEMORY_EXPORT!r}; "
            "see docs/guest-abi.md")
    want_func(ALLOC_EXPORT, (("i32",), ("i32",)), "alloc(size) -> ptr, for the event")
    want_func(handler, (("i32", "i32"), ("i64",)), "handle(ptr, len) -> (ptr << 32 | len)")
    has_init = INIT_EXPORT in exports
    if has_init:
        want_func(INIT_EXPORT, ((), ()), "the optional init phase")
    has_initialize = WASI_REACTOR_INIT in exports
    if has_initialize:
        want_func(WASI_REACTOR_INIT, ((), ()), "WASI reactor constructors")
    return ModuleShape("reactor", handler, has_init, has_initialize)


def decode_result(value: int) -> tuple[bool, int, int]:
    """(is_error, ptr, len) from handle's i64 (wasmtime returns it signed)."""
    raw = value & 0xFFFF_FFFF_FFFF_FFFF
    return bool(raw & ERROR_BIT), (raw >> 32) & 0x7FFF_FFFF, raw & 0xFFFF_FFFF


def error_document(data: bytes) -> FunctionError:
    """The bytes of a result with ERROR_BIT set: Lambda's error document, or any text as the
    message (docs/guest-abi.md)."""
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "errorMessage" in doc:
        err = FunctionError.from_document(doc)
        return HandlerError(err.message, err.error_type if doc.get("errorType") else None,
                            err.stack_trace)
    return HandlerError(data.decode("utf-8", "replace"))


def cause(exc: BaseException) -> str:
    """The informative line of a wasmtime error. Traps read "error while executing at wasm
    backtrace: <frames> Caused by: wasm trap: <cause>"; the frames belong in stackTrace."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1].removeprefix("wasm trap: ")


def backtrace(trap: wasmtime.Trap) -> list[str]:
    lines = []
    for frame in trap.frames:
        name = frame.func_name or f"<func {frame.func_index}>"
        lines.append(f"{name} (wasm offset 0x{frame.module_offset:x})")
    return lines


def classify(exc: Exception, *, timeout_s: float, memory_mb: int, memory_bytes: int,
             during: str) -> tuple[FunctionError, bool]:
    """(error, state_lost) for a failed guest call. `state_lost` means the instance must not be
    used again (it trapped mid-way, or exited)."""
    limit = memory_mb * MB
    near_cap = memory_bytes >= limit - max(MB, int(limit * OOM_SLACK_FRACTION))
    if isinstance(exc, wasmtime.ExitTrap):
        if exc.code == 0:
            raise ValueError("exit code 0 is not a failure")  # callers handle success first
        if near_cap:
            return FunctionOutOfMemory.at(memory_mb, f"exit status {exc.code} with linear memory "
                                          f"at {memory_bytes // MB} MiB"), True
        return FunctionCrashed(f"Runtime exited with error: exit status {exc.code} during {during}"), True
    if isinstance(exc, wasmtime.Trap):
        code = exc.trap_code
        if code == wasmtime.TrapCode.INTERRUPT:
            return FunctionTimeout.after(timeout_s), True
        name = code.name.lower() if code is not None else "trap"
        message = cause(exc)
        trace = backtrace(exc)
        if near_cap:
            err = FunctionOutOfMemory.at(
                memory_mb, f"memory.grow refused at {memory_bytes // MB} MiB, then wasm trap: {name}")
            err.stack_trace = trace
            return err, True
        # The function's own failure, like a handler's exception (for a command the
        # environment stays in service).
        return WasmTrap(f"wasm trap during {during}: {name}: {message}", stack_trace=trace), True
    # Instantiation failures (e.g. a minimum memory over the cap) and host errors.
    text = cause(exc)
    if "memory" in text and ("limit" in text or "exceed" in text or "grow" in text):
        return FunctionOutOfMemory.at(memory_mb, text), True
    return WasmError(f"Runtime failed during {during}: {text}"), True
