"""On-disk cache of compiled WebAssembly modules (wasmtime's `.cwasm` serialisation).

Compiling with Cranelift costs milliseconds to seconds; loading a compiled artifact costs
microseconds. So every compiled module is written to `cache_dir` and reused by any later
environment, backend or server process.

Key: sha256(module bytes) + wasmtime version + a digest of the engine configuration. A `.cwasm`
is native code that wasmtime maps and runs, and it is only valid for the exact engine settings it
was compiled with, so anything that changes code generation must be in `engine_fingerprint`.

Integrity: beside each `<key>.cwasm` lies `<key>.sha256` with the artifact's digest, written
after the artifact and both renamed into place atomically. A load recomputes the digest and
compares before handing the bytes to wasmtime; a missing, short or corrupted entry is deleted
and rebuilt from the module, never deserialised. (wasmtime's own header check catches an
engine mismatch, not flipped bits in code.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass

import wasmtime

log = logging.getLogger(__name__)

RECENT_MODULES = 64  # compiled modules kept loaded per backend (code pages are shared mmaps)


def wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def engine_fingerprint(settings: dict[str, object]) -> str:
    """A short digest of everything that makes a compiled artifact engine-specific."""
    doc = {
        "wasmtime": wasmtime_version(),
        "machine": platform.machine(),
        "settings": settings,
    }
    blob = json.dumps(doc, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class CacheStats:
    hits: int = 0  # loaded from disk
    misses: int = 0  # compiled
    corrupt: int = 0  # disk entries that failed verification
    memory_hits: int = 0  # already loaded in this process (another revision, same module)


class CompiledModuleCache:
    """Compiled modules by module digest, for one engine configuration."""

    def __init__(self, engine: wasmtime.Engine, cache_dir: str, fingerprint: str) -> None:
        self.engine = engine
        self.dir = cache_dir
        self.fingerprint = fingerprint
        self.stats = CacheStats()
        # Modules loaded in this process, most recent last: a redeploy of the same code (a new
        # revision) skips even the disk read and checksum. wasmtime modules are immutable and
        # thread-safe, so sharing them across versions is sound.
        self._recent: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._lock = threading.Lock()
        os.makedirs(cache_dir, exist_ok=True)

    def paths(self, module_sha256: str) -> tuple[str, str]:
        base = os.path.join(self.dir, f"{module_sha256}-{self.fingerprint}")
        return base + ".cwasm", base + ".sha256"

    def load_or_compile(self, module_sha256: str, wasm: bytes | None,
                        read_wasm=None) -> wasmtime.Module:
        """The compiled module for `module_sha256`: from disk if intact, else compiled from
        `wasm` (or `read_wasm()`, called only on a miss) and stored.

        Raises wasmtime.WasmtimeError if the bytes are not a valid module."""
        with self._lock:
            module = self._recent.get(module_sha256)
            if module is not None:
                self._recent.move_to_end(module_sha256)
                self.stats.memory_hits += 1
                return module
        module = self._load(module_sha256)
        if module is not None:
            self.stats.hits += 1
        else:
            self.stats.misses += 1
            if wasm is None:
                wasm = read_wasm()
            module = wasmtime.Module(self.engine, wasm)
            self._store(module_sha256, module.serialize())
        with self._lock:
            self._recent[module_sha256] = module
            while len(self._recent) > RECENT_MODULES:
                self._recent.popitem(last=False)
        return module

    def _load(self, module_sha256: str) -> wasmtime.Module | None:
        artifact, checksum = self.paths(module_sha256)
        try:
            with open(checksum, "r", encoding="ascii") as f:
                expected = f.read().strip()
            with open(artifact, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("wasm cache: cannot read %s (%s); recompiling", artifact, exc)
            return None
        if hashlib.sha256(data).hexdigest() != expected:
            self.stats.corrupt += 1
            log.warning("wasm cache: %s fails its checksum; discarding and recompiling", artifact)
            self._discard(module_sha256)
            return None
        try:
            return wasmtime.Module.deserialize(self.engine, data)
        except wasmtime.WasmtimeError as exc:
            # Intact bytes from an incompatible engine (should be impossible given the key).
            self.stats.corrupt += 1
            log.warning("wasm cache: %s rejected by wasmtime (%s); recompiling", artifact, exc)
            self._discard(module_sha256)
            return None

    def _store(self, module_sha256: str, data: bytes | bytearray) -> None:
        artifact, checksum = self.paths(module_sha256)
        digest = hashlib.sha256(data).hexdigest()
        try:
            # Artifact first, checksum last: a reader that finds the checksum finds the artifact
            # it describes (rename is atomic); a crash in between leaves no checksum = a miss.
            self._atomic_write(artifact, bytes(data))
            self._atomic_write(checksum, (digest + "\n").encode())
        except OSError as exc:
            log.warning("wasm cache: cannot write %s (%s); continuing uncached", artifact, exc)

    def _atomic_write(self, path: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _discard(self, module_sha256: str) -> None:
        for path in self.paths(module_sha256):
            try:
                os.unlink(path)
            except OSError:
                pass
