"""Per-version preparation of a wasm function: `Prepared` and `prepare_version()`.

Runs once per version (the backend caches the result and serialises concurrent first calls):
the code package is checked (one core module named function.wasm, under the size limit),
compiled through the on-disk cache (cache.py), checked against the guest ABI (abi.py), linked
against WASI, instantiated once on trial, and, for a reactor with an init phase, snapshotted
(snapshot.py). Every refusal is an InvalidCodePackage naming the fix, so a bad package fails
its deploy rather than every invocation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass

import wasmtime

from runner.environments.wasm import abi
from runner.environments.wasm.engine import SharedEngine
from runner.environments.wasm.guest_io import GuestIO
from runner.environments.wasm.snapshot import Snapshot, build_snapshot
from runner.errors import InvalidCodePackage, SnapshotUnsupported
from runner.model import MB, FunctionVersion

log = logging.getLogger(__name__)

MODULE_FILE = "function.wasm"
MAX_MODULE_BYTES = 50 * MB  # Lambda's limit on a directly uploaded package


@dataclass
class Prepared:
    """Per-version state built once: compiled module, linked instantiator, shape."""

    module: wasmtime.Module
    pre: wasmtime.InstancePre
    shape: abi.ModuleShape
    snapshot: Snapshot | None
    snapshot_note: str  # why there is no snapshot, for the init log


def prepare_version(parts: SharedEngine, version: FunctionVersion, *, snapshots: bool,
                    max_module_bytes: int) -> Prepared:
    path = os.path.join(version.code_dir, MODULE_FILE)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise InvalidCodePackage(
            "code", f"no {MODULE_FILE} in the code package; a wasm function's package is "
            "one WebAssembly module named function.wasm") from None
    if size > max_module_bytes:
        raise InvalidCodePackage(
            "code", f"{MODULE_FILE} is {size} bytes, over the {max_module_bytes}-byte "
            "limit; strip debug sections (wasm-strip) or shrink the module")
    with open(path, "rb") as f:
        wasm = f.read()
    if wasm[:4] != b"\0asm":
        raise InvalidCodePackage(
            "code", f"{MODULE_FILE} is not a WebAssembly binary (no \\0asm header); "
            "compile for wasm32-wasip1 or assemble the .wat with wat2wasm")
    if wasm[4:8] != b"\x01\x00\x00\x00":
        raise InvalidCodePackage(
            "code", f"{MODULE_FILE} is a WebAssembly component or an unknown binary "
            "version; only core modules (WASI preview 1) are supported, see "
            "docs/guest-abi.md")
    digest = hashlib.sha256(wasm).hexdigest()
    try:
        module = parts.cache.load_or_compile(digest, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InvalidCodePackage(
            "code", f"{MODULE_FILE} is not a valid WebAssembly module: "
            f"{str(exc).splitlines()[0]}; rebuild it with a wasm32-wasip1 toolchain") from None
    shape = abi.check_shape(module, version.config.handler)
    try:
        pre = parts.linker.instantiate_pre(module)
    except wasmtime.WasmtimeError as exc:
        raise InvalidCodePackage(
            "code", f"the module's imports cannot be satisfied: {str(exc).splitlines()[0]}; "
            f"import only functions of {abi.WASI_MODULE}") from None
    _trial_instantiate(parts, version, pre)
    snapshot, note = None, ""
    if shape.kind == "reactor" and (shape.has_init or shape.has_initialize):
        if snapshots:
            try:
                snapshot = build_snapshot(parts, version, wasm, shape, digest)
            except SnapshotUnsupported as exc:
                note = f"[runner] no snapshot ({exc}); init runs in every environment\n"
                log.info("wasm %s: %s", version.key, note.strip())
        else:
            note = "[runner] snapshots disabled; init runs in every environment\n"
    return Prepared(module, pre, shape, snapshot, note)


def _trial_instantiate(parts: SharedEngine, version: FunctionVersion,
                       pre: wasmtime.InstancePre) -> None:
    """Instantiate once at deploy, so a start function that traps or a minimum memory over
    memory_mb fails the deploy instead of every invocation. Runs no export."""
    with tempfile.TemporaryDirectory(dir=parts.io_root) as d:
        io = GuestIO(d, d)
        store = parts.new_store(version, io, stdin=False)
        try:
            parts.ticker.begin()
            store.set_epoch_deadline(parts.ticker.ticks_until(abi.INIT_TIMEOUT_S))
            try:
                pre.instantiate(store)
            finally:
                parts.ticker.end()
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            mb = version.config.memory_mb
            text = abi.cause(exc)
            if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.INTERRUPT:
                text = f"start function still running after {abi.INIT_TIMEOUT_S:.0f} s"
            if "memory" in text and ("limit" in text or "exceeds" in text):
                raise InvalidCodePackage(
                    "memory_mb", f"the module needs more linear memory than {mb} MB "
                    f"({text}); raise memory_mb or lower the module's minimum memory") from None
            raise InvalidCodePackage(
                "code", f"the module cannot be instantiated: {text}; a start function must "
                "not trap (move work into init or the handler)") from None
        finally:
            store.close()
            io.close()
