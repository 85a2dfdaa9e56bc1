"""The WebAssembly runtime: wasmtime stores in the server process, one per environment.

Two kinds of guest (docs/guest-abi.md):
* WASI command (handler `_start`): a fresh instance per invocation; the event on stdin, the
  response on stdout, stderr to the log.
* Reactor (handler = the handle export): one instance per environment serving invocations in
  sequence, globals persisting; `init` runs once per environment, or once per version when a
  snapshot (wasm_snapshot.py) replaces it.

Guarantees (beyond those of base.py):
* Linear memory is capped at memory_mb by the store's limiter; growing past it fails in the
  guest and is reported as FunctionOutOfMemory, never as a host failure.
* Every guest call runs under an epoch deadline (wasm_ticker.py), so invoke() returns within
  the timeout plus ~2 ticks; the thread running it sits in the environment's CPU cgroup
  (wasm_cpu.py) for exactly the call.
* WASI capabilities: argv fixed to ["function.wasm"], the environment is exactly the function's
  configured variables, the only preopened directory is the environment's private /tmp, no
  sockets (preview 1 offers none unless preopened), stdin is the event file only.
* Stores are closed explicitly (never left to the garbage collector): wasmtime's background
  thread must not find live stores at interpreter shutdown.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass

import psutil
import wasmtime

from runner import settings
from runner.environments.wasm import abi
from runner.environments.wasm.cache import CompiledModuleCache, engine_fingerprint
from runner.environments.wasm.cpu import CpuShares
from runner.environments.wasm.environment import WasmEnvironment
from runner.environments.wasm.guest_io import GuestIO
from runner.environments.wasm.snapshot import Snapshot, build_snapshot
from runner.environments.wasm.ticker import EpochTicker
from runner.errors import InvalidCodePackage, SnapshotUnsupported
from runner.model import MB, FunctionVersion

log = logging.getLogger(__name__)

MODULE_FILE = "function.wasm"
MAX_MODULE_BYTES = 50 * 1024 * 1024  # Lambda's limit on a directly uploaded package
GUEST_ARGV = ["function.wasm"]


def _close_at_exit(ref: "weakref.ref[WasmBackend]") -> None:
    backend = ref()
    if backend is not None:
        backend.close()


def _remove_stale_io_dirs(root: str) -> None:
    """RAM-backed stdio directories of runner processes that died without closing."""
    try:
        entries = os.listdir(root)
    except OSError:
        return
    for entry in entries:
        parts = entry.split("-")
        if len(parts) == 5 and parts[:3] == ["runner", "wasm", "io"] and parts[3].isdigit() \
                and not psutil.pid_exists(int(parts[3])):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)


def default_cache_dir() -> str:
    """Outside any per-run work directory, so compiled modules survive a server restart."""
    explicit = settings.current().wasm_cache_dir
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lambda-runner", "wasm")


@dataclass
class Prepared:
    """Per-version state built once by prepare(): compiled module, linked instantiator, shape."""

    module: wasmtime.Module
    pre: wasmtime.InstancePre
    shape: abi.ModuleShape
    snapshot: Snapshot | None
    snapshot_note: str  # why there is no snapshot, for the init log


class WasmBackend:
    """Makes wasm environments. Thread-safe: the pool calls it from many threads."""

    runtime = "wasm"

    def __init__(self, work_dir: str, cache_dir: str | None = None, *, fuel: bool | None = None,
                 snapshots: bool = True, cpu_share: bool = True,
                 max_module_bytes: int = MAX_MODULE_BYTES) -> None:
        if fuel is None:
            # Off by default: counting fuel slows guest code; RUNNER_WASM_FUEL=1 turns it on.
            fuel = settings.current().wasm_fuel
        engine_settings = {"epoch_interruption": True, "consume_fuel": fuel, "memory_init_cow": True,
                    "cranelift_opt_level": "speed"}
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = fuel
        config.memory_init_cow = True
        config.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(config)
        self.fuel = fuel
        self.snapshots = snapshots
        self.max_module_bytes = max_module_bytes
        self.work_dir = work_dir
        os.makedirs(work_dir, exist_ok=True)
        self.cache = CompiledModuleCache(
            self.engine, cache_dir or default_cache_dir(), engine_fingerprint(engine_settings))
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.ticker = EpochTicker(self.engine)
        self.cpu = CpuShares() if cpu_share else None
        if self.cpu is not None and not self.cpu.available:
            log.warning("wasm: CPU share not enforced (%s)", self.cpu.reason)
        self.cpu_enforcement = "cgroup-v1-thread" if self.cpu and self.cpu.available else "none"
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _remove_stale_io_dirs(shm or tempfile.gettempdir())
        self.io_root = tempfile.mkdtemp(prefix=f"runner-wasm-io-{os.getpid()}-", dir=shm)
        self._prepared: dict[str, Prepared] = {}
        self._envs: "weakref.WeakSet[WasmEnvironment]" = weakref.WeakSet()
        self._closed = False
        self._lock = threading.Lock()
        self._version_locks: dict[str, threading.Lock] = {}
        # Best effort if the owner never calls close(): stores closed before wasmtime's
        # background thread goes away, RAM files and cgroups removed.
        atexit.register(_close_at_exit, weakref.ref(self))

    # ------------------------------------------------------------------ Backend protocol

    def prepare(self, version: FunctionVersion) -> None:
        if self.cpu is not None:
            self.cpu.warm_up()
        self._prepare(version)

    def create(self, version: FunctionVersion) -> WasmEnvironment:
        env = WasmEnvironment(version, self._prepare(version), self)
        with self._lock:
            self._envs.add(env)
        return env

    def forget(self, version: FunctionVersion) -> None:
        with self._lock:
            self._prepared.pop(version.key, None)
            self._version_locks.pop(version.key, None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Stores must be closed before interpreter exit (wasmtime's background thread must not
        # find live ones), and lanes need their threads back: destroy what the pool left.
        with self._lock:
            envs = list(self._envs)
        for env in envs:
            env.destroy()  # a running one is only marked: it tears down when its call returns
        running = [env for env in envs if env.running]
        if running:
            self.ticker.expire_all()  # so they return now rather than at their deadlines
            give_up = time.monotonic() + 10.0
            while any(env.running for env in running) and time.monotonic() < give_up:
                time.sleep(0.005)
        self.ticker.stop()
        if self.cpu is not None:
            self.cpu.close()
        with self._lock:
            self._prepared.clear()
        shutil.rmtree(self.io_root, ignore_errors=True)

    # ------------------------------------------------------------------ per-version work

    def _prepare(self, version: FunctionVersion) -> Prepared:
        with self._lock:
            done = self._prepared.get(version.key)
            if done is not None:
                return done
            vlock = self._version_locks.setdefault(version.key, threading.Lock())
        with vlock:  # one compile per version even under concurrent first invocations
            with self._lock:
                done = self._prepared.get(version.key)
            if done is not None:
                return done
            prepared = self._build(version)
            with self._lock:
                self._prepared[version.key] = prepared
            return prepared

    def _build(self, version: FunctionVersion) -> Prepared:
        path = os.path.join(version.code_dir, MODULE_FILE)
        try:
            size = os.path.getsize(path)
        except OSError:
            raise InvalidCodePackage(
                "code", f"no {MODULE_FILE} in the code package; a wasm function's package is "
                "one WebAssembly module named function.wasm") from None
        if size > self.max_module_bytes:
            raise InvalidCodePackage(
                "code", f"{MODULE_FILE} is {size} bytes, over the {self.max_module_bytes}-byte "
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
            module = self.cache.load_or_compile(digest, wasm)
        except wasmtime.WasmtimeError as exc:
            raise InvalidCodePackage(
                "code", f"{MODULE_FILE} is not a valid WebAssembly module: "
                f"{str(exc).splitlines()[0]}; rebuild it with a wasm32-wasip1 toolchain") from None
        shape = abi.check_shape(module, version.config.handler)
        try:
            pre = self.linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise InvalidCodePackage(
                "code", f"the module's imports cannot be satisfied: {str(exc).splitlines()[0]}; "
                f"import only functions of {abi.WASI_MODULE}") from None
        self._trial_instantiate(version, pre, shape)
        snapshot, note = None, ""
        if shape.kind == "reactor" and (shape.has_init or shape.has_initialize):
            if self.snapshots:
                try:
                    snapshot = build_snapshot(self, version, wasm, shape, digest)
                except SnapshotUnsupported as exc:
                    note = f"[runner] no snapshot ({exc}); init runs in every environment\n"
                    log.info("wasm %s: %s", version.key, note.strip())
            else:
                note = "[runner] snapshots disabled; init runs in every environment\n"
        return Prepared(module, pre, shape, snapshot, note)

    def _trial_instantiate(self, version: FunctionVersion, pre: wasmtime.InstancePre,
                           shape: abi.ModuleShape) -> None:
        """Instantiate once at deploy, so a start function that traps or a minimum memory over
        memory_mb fails the deploy instead of every invocation. Runs no export."""
        with tempfile.TemporaryDirectory(dir=self.io_root) as d:
            io = GuestIO(d, d)
            store = self.new_store(version, io, stdin=False)
            try:
                self.ticker.begin()
                store.set_epoch_deadline(self.ticker.ticks_until(abi.INIT_TIMEOUT_S))
                try:
                    pre.instantiate(store)
                finally:
                    self.ticker.end()
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

    # ------------------------------------------------------------------ shared helpers

    def new_store(self, version: FunctionVersion, io: GuestIO, *, stdin: bool) -> wasmtime.Store:
        """A store with the function's limits and WASI capabilities, no instance yet."""
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=version.config.memory_mb * MB, instances=1, tables=10,
                         memories=1, table_elements=1_000_000)
        if self.fuel:
            store.set_fuel(abi.FUEL_BUDGET)
        wasi = wasmtime.WasiConfig()
        wasi.argv = GUEST_ARGV
        wasi.env = sorted(version.config.environment.items())
        if stdin:
            wasi.stdin_file = io.stdin_path
        wasi.stdout_file = io.stdout_path
        wasi.stderr_file = io.stderr_path
        wasi.preopen_dir(io.tmp_dir, "/tmp")
        store.set_wasi(wasi)
        return store

