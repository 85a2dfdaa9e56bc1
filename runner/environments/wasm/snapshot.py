"""Pre-initialised reactor snapshots (the Wizer approach), built once per version in prepare().

A reactor's `init` (and wasi-libc's `_initialize`) runs once, at deploy, in an instance of an
*instrumented* copy of the module that also exports every defined global. Then the initialised
state is written back into a new module:

* the global section's initialisers become the captured values;
* the memory section's minimum becomes the current size;
* the data section becomes the non-zero 4 KiB runs of the initialised memory;
* the start section is dropped (it already ran).

New environments instantiate that module and skip init: with copy-on-write memory
initialisation (Config.memory_init_cow) instantiating costs tens of microseconds whatever init
did. The compiled snapshot is cached on disk (cache.py) under a key of the module digest,
the handler and the environment variables, so a server restart neither re-runs init nor
recompiles.

What is captured is linear memory and globals only. Modules outside that model are refused with
SnapshotUnsupported, and their environments run init themselves: imported or several memories,
64-bit or shared memory, passive data segments or a data-count section (code could re-read the
original segments with memory.init), non-numeric mutable globals, non-constant initialisers, or
an init that fails. Guest rules (docs/guest-abi.md): init must not leave files open or rely on
table changes; clock and random values read during init are frozen into the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import struct
import tempfile
import time
from dataclasses import dataclass

import wasmtime

from runner.environments.wasm import abi
from runner.environments.wasm.engine import SharedEngine
from runner.environments.wasm.guest_io import GuestIO
from runner.errors import SnapshotUnsupported
from runner.model import FunctionVersion

CHUNK = 4096
GLOBAL_EXPORT_PREFIX = "__runner_snapshot_global_"
SNAPSHOT_FORMAT = 1  # bump when the rewriting changes, so stale cached snapshots are not reused
_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64"}


@dataclass
class Snapshot:
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    key: str
    built: bool  # False: loaded from the disk cache without running init
    build_ms: float


# ---------------------------------------------------------------------- binary format helpers


def _uleb(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _enc_uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _enc_sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    n, pos = _uleb(buf, pos)
    return buf[pos:pos + n].decode("utf-8", "replace"), pos + n


def _skip_const_expr(buf: bytes, pos: int) -> int:
    """Position after a constant expression's `end`; refuses anything but single constants."""
    op = buf[pos]
    pos += 1
    if op in (0x41, 0x42):
        while buf[pos] & 0x80:
            pos += 1
        pos += 1
    elif op == 0x43:
        pos += 4
    elif op == 0x44:
        pos += 8
    elif op in (0x23, 0xD2):
        _, pos = _uleb(buf, pos)
    elif op == 0xD0:
        pos += 1
    else:
        raise SnapshotUnsupported(f"constant expression opcode 0x{op:02x}")
    if buf[pos] != 0x0B:
        raise SnapshotUnsupported("extended constant expressions")
    return pos + 1


def _sections(wasm: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 8
    while pos < len(wasm):
        sid = wasm[pos]
        size, pos = _uleb(wasm, pos + 1)
        out.append((sid, wasm[pos:pos + size]))
        pos += size
    return out


def _assemble(sections: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([sid]) + _enc_uleb(len(p)) + p for sid, p in sections)
    return b"\0asm\x01\x00\x00\x00" + body


@dataclass
class _Layout:
    imported_globals: int
    globals: list[tuple[int, bool]]  # (valtype byte, mutable) of defined globals
    memory_max: int | None


def _analyse(sections: list[tuple[int, bytes]]) -> _Layout:
    imported_globals, globals_, memories, memory_max = 0, [], 0, None
    for sid, p in sections:
        if sid == 2:  # imports
            count, pos = _uleb(p, 0)
            for _ in range(count):
                _, pos = _name(p, pos)
                _, pos = _name(p, pos)
                kind = p[pos]
                pos += 1
                if kind == 0x00:
                    _, pos = _uleb(p, pos)
                elif kind == 0x02:
                    raise SnapshotUnsupported("imported memory")
                elif kind == 0x03:
                    imported_globals += 1
                    pos += 2
                else:
                    raise SnapshotUnsupported("imported tables or tags")
        elif sid == 5:  # memories
            count, pos = _uleb(p, 0)
            memories += count
            if count == 1:
                flags = p[pos]
                if flags not in (0, 1):
                    raise SnapshotUnsupported("shared or 64-bit memory")
                _, pos = _uleb(p, pos + 1)
                if flags == 1:
                    memory_max, pos = _uleb(p, pos)
        elif sid == 6:  # globals
            count, pos = _uleb(p, 0)
            for _ in range(count):
                valtype, mutable = p[pos], p[pos + 1] == 1
                if mutable and valtype not in _VALTYPES:
                    raise SnapshotUnsupported("a mutable reference or vector global")
                pos = _skip_const_expr(p, pos + 2)
                globals_.append((valtype, mutable))
        elif sid == 11:  # data
            count, pos = _uleb(p, 0)
            for _ in range(count):
                flags, pos = _uleb(p, pos)
                if flags != 0:
                    raise SnapshotUnsupported("passive or multi-memory data segments")
                pos = _skip_const_expr(p, pos)
                n, pos = _uleb(p, pos)
                pos += n
        elif sid == 12:
            raise SnapshotUnsupported("a data-count section (bulk memory over data segments)")
    if memories != 1:
        raise SnapshotUnsupported(f"{memories} defined memories (need exactly one)")
    return _Layout(imported_globals, globals_, memory_max)


def _instrument(sections: list[tuple[int, bytes]], layout: _Layout) -> bytes:
    """The module plus an export of every defined mutable global."""
    extra = [(GLOBAL_EXPORT_PREFIX + str(i), layout.imported_globals + i)
             for i, (_, mutable) in enumerate(layout.globals) if mutable]
    out = []
    for sid, p in sections:
        if sid == 7:
            count, pos = _uleb(p, 0)
            entries = b"".join(_enc_uleb(len(n)) + n.encode() + b"\x03" + _enc_uleb(idx)
                               for n, idx in extra)
            p = _enc_uleb(count + len(extra)) + p[pos:] + entries
        out.append((sid, p))
    return _assemble(out)


def _const(valtype: int, value: object) -> bytes:
    if valtype == 0x7F:
        return b"\x41" + _enc_sleb(int(value)) + b"\x0b"
    if valtype == 0x7E:
        return b"\x42" + _enc_sleb(int(value)) + b"\x0b"
    if valtype == 0x7D:
        return b"\x43" + struct.pack("<f", float(value)) + b"\x0b"
    return b"\x44" + struct.pack("<d", float(value)) + b"\x0b"


def _data_segments(memory: bytes) -> bytes:
    """Active segments covering the non-zero 4 KiB chunks of `memory`, adjacent ones merged."""
    zero = bytes(CHUNK)
    runs: list[tuple[int, int]] = []
    for off in range(0, len(memory), CHUNK):  # memory is whole 64 KiB pages: chunks are full
        if memory[off:off + CHUNK] != zero:
            if runs and runs[-1][1] == off:
                runs[-1] = (runs[-1][0], off + CHUNK)
            else:
                runs.append((off, off + CHUNK))
    body = bytearray(_enc_uleb(len(runs)))
    for start, end in runs:
        chunk = memory[start:end]
        body += b"\x00\x41" + _enc_sleb(start) + b"\x0b" + _enc_uleb(len(chunk)) + chunk
    return bytes(body)


def _rewrite(sections, layout: _Layout, values: list, memory: bytes) -> bytes:
    pages = len(memory) // 65536
    out = []
    for sid, p in sections:
        if sid == 8:  # start: already ran
            continue
        if sid == 5:
            limits = (b"\x01" + _enc_uleb(pages) + _enc_uleb(layout.memory_max)
                      if layout.memory_max is not None else b"\x00" + _enc_uleb(pages))
            p = b"\x01" + limits
        elif sid == 6:
            count, pos = _uleb(p, 0)
            body = bytearray(_enc_uleb(count))
            for i in range(count):
                end = _skip_const_expr(p, pos + 2)
                valtype, mutable = layout.globals[i]
                body += p[pos:pos + 2]
                body += _const(valtype, values[i]) if mutable else p[pos + 2:end]
                pos = end
            p = bytes(body)
        elif sid == 11:
            p = _data_segments(memory)
        out.append((sid, p))
    if not any(sid == 11 for sid, _ in out):
        code_at = max((i for i, (sid, _) in enumerate(out) if sid == 10), default=len(out) - 1)
        out.insert(code_at + 1, (11, _data_segments(memory)))
    return _assemble(out)


# ---------------------------------------------------------------------- building


def snapshot_key(version: FunctionVersion, module_digest: str) -> str:
    doc = {"module": module_digest, "handler": version.config.handler, "format": SNAPSHOT_FORMAT,
           "env": sorted(version.config.environment.items())}
    return "snap-" + hashlib.sha256(json.dumps(doc).encode()).hexdigest()


def build_snapshot(parts: SharedEngine, version: FunctionVersion, wasm: bytes,
                   shape: abi.ModuleShape, module_digest: str) -> Snapshot:
    sections = _sections(wasm)
    layout = _analyse(sections)
    key = snapshot_key(version, module_digest)
    built = False
    t0 = time.monotonic()

    def make() -> bytes:
        nonlocal built
        built = True
        return _run_init_and_capture(parts, version, sections, layout, shape)

    module = parts.cache.load_or_compile(key, None, read_wasm=make)
    pre = parts.linker.instantiate_pre(module)
    return Snapshot(module, pre, key, built, (time.monotonic() - t0) * 1000.0)


def _run_init_and_capture(parts: SharedEngine, version: FunctionVersion, sections,
                          layout: _Layout, shape: abi.ModuleShape) -> bytes:
    instrumented = wasmtime.Module(parts.engine, _instrument(sections, layout))
    with tempfile.TemporaryDirectory(dir=parts.io_root) as d:
        io = GuestIO(d, d)
        store = parts.new_store(version, io, stdin=False)
        try:
            parts.ticker.begin()
            store.set_epoch_deadline(parts.ticker.ticks_until(
                max(abi.INIT_TIMEOUT_S, version.config.timeout_s)))
            try:
                instance = parts.linker.instantiate(store, instrumented)
                exports = instance.exports(store)
                if shape.has_initialize:
                    exports[abi.WASI_REACTOR_INIT](store)
                if shape.has_init:
                    exports[abi.INIT_EXPORT](store)
            finally:
                parts.ticker.end()
            memory = bytes(exports[abi.MEMORY_EXPORT].read(store))
            values = [exports[GLOBAL_EXPORT_PREFIX + str(i)].value(store) if mutable else None
                      for i, (_, mutable) in enumerate(layout.globals)]
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise SnapshotUnsupported(f"init failed: {abi.cause(exc)}") from None
        finally:
            store.close()
            io.close()
    return _rewrite(sections, layout, values, memory)

