"""What every wasm environment of one backend shares: `SharedEngine`.

Built once by the backend (backend.py) and handed to the per-version preparation (prepare.py),
the snapshot builder (snapshot.py) and each environment (environment.py), so none of them
needs the backend itself: the wasmtime engine and its linker (WASI defined), the compiled-module
cache, the epoch ticker, the CPU shares, whether fuel is counted, where the RAM-backed stdio
files and the guests' /tmp directories go, and `new_store()`, which gives a store the
function's limits and WASI capabilities.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import wasmtime

from runner import settings
from runner.confinement import tmpfs
from runner.confinement.stale import dead_owner_entries
from runner.environments.wasm import abi
from runner.environments.wasm.cache import CompiledModuleCache, engine_fingerprint
from runner.environments.wasm.cpu import CpuShares
from runner.environments.wasm.guest_io import GuestIO
from runner.environments.wasm.ticker import EpochTicker
from runner.model import MB, FunctionVersion

GUEST_ARGV = ["function.wasm"]
IO_DIR_PREFIX = "runner-wasm-io-"  # + "<pid>-<random>": the pid names the owner (stale.py)


def default_cache_dir() -> str:
    """Outside any per-run work directory, so compiled modules survive a server restart."""
    explicit = settings.current().wasm_cache_dir
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lambda-runner", "wasm")

# A guest /tmp directory is `<work_dir>/tmp-<server pid>-...`, a capped tmpfs (confinement/tmpfs.py)
TMP_PREFIX = "tmp-"


@dataclass
class SharedEngine:
    """The engine, linker, cache, ticker, CPU shares and directories of one backend.

    Thread-safe as used: wasmtime's Engine, Linker (after define_wasi) and Module are shareable
    across threads; every Store is used by one thread at a time (its environment's)."""

    engine: wasmtime.Engine
    linker: wasmtime.Linker
    cache: CompiledModuleCache
    ticker: EpochTicker
    cpu: CpuShares | None  # None: CPU shares turned off by the backend's owner
    fuel: bool  # every call gets abi.FUEL_BUDGET and reports what it consumed
    work_dir: str  # the guests' /tmp directories
    io_root: str  # this process's RAM-backed directory for stdio files

    @classmethod
    def build(cls, work_dir: str, cache_dir: str | None, *, fuel: bool,
              cpu_share: bool) -> "SharedEngine":
        engine_settings = {"epoch_interruption": True, "consume_fuel": fuel,
                           "memory_init_cow": True, "cranelift_opt_level": "speed"}
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = fuel
        config.memory_init_cow = True
        config.cranelift_opt_level = "speed"
        engine = wasmtime.Engine(config)
        os.makedirs(work_dir, exist_ok=True)
        tmpfs.sweep(work_dir, TMP_PREFIX)  # the /tmp mounts of servers killed with SIGKILL
        cache = CompiledModuleCache(
            engine, cache_dir or default_cache_dir(), engine_fingerprint(engine_settings))
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        cpu = CpuShares() if cpu_share else None
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _remove_stale_io_dirs(shm or tempfile.gettempdir())
        io_root = tempfile.mkdtemp(prefix=f"{IO_DIR_PREFIX}{os.getpid()}-", dir=shm)
        return cls(engine, linker, cache, EpochTicker(engine), cpu, fuel, work_dir, io_root)

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

    def close(self) -> None:
        """Stop the ticker, remove the CPU lanes and the stdio files. Only once no guest call
        runs any more (the backend waits for them first)."""
        self.ticker.stop()
        if self.cpu is not None:
            self.cpu.close()
        shutil.rmtree(self.io_root, ignore_errors=True)


def _remove_stale_io_dirs(root: str) -> None:
    """RAM-backed stdio directories of runner processes that died without closing: they would
    hold /dev/shm memory until the next reboot."""
    for name in dead_owner_entries(root, IO_DIR_PREFIX):
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
