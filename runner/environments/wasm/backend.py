"""The WebAssembly runtime's `Backend`: wasmtime stores in the server process, one per
environment.

Two kinds of guest (docs/guest-abi.md):
* WASI command (handler `_start`): a fresh instance per invocation; the event on stdin, the
  response on stdout, stderr to the log.
* Reactor (handler = the handle export): one instance per environment serving invocations in
  sequence, globals persisting; `init` runs once per environment, or once per version when a
  snapshot (snapshot.py) replaces it.

Guarantees (beyond those of base.py):
* Linear memory is capped at memory_mb by the store's limiter; growing past it fails in the
  guest and is reported as FunctionOutOfMemory, never as a host failure.
* Every guest call runs under an epoch deadline (ticker.py), so invoke() returns within the
  timeout plus ~2 ticks; the thread running it sits in the environment's CPU cgroup (cpu.py)
  for exactly the call.
* WASI capabilities (engine.py's new_store): argv fixed to ["function.wasm"], the environment
  is exactly the function's configured variables, the only preopened directory is the
  environment's private /tmp, no sockets (preview 1 offers none unless preopened), stdin is
  the event file only.
* Stores are closed explicitly (never left to the garbage collector): wasmtime's background
  thread must not find live stores at interpreter shutdown.

This module holds the backend's bookkeeping only: the shared parts are built once (engine.py),
each version is prepared once (prepare.py), environments live in environment.py.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref

from runner import settings
from runner.environments.wasm.engine import SharedEngine
from runner.environments.wasm.environment import WasmEnvironment
from runner.environments.wasm.prepare import MAX_MODULE_BYTES, Prepared, prepare_version
from runner.model import FunctionVersion

log = logging.getLogger(__name__)


def _close_at_exit(ref: "weakref.ref[WasmBackend]") -> None:
    backend = ref()
    if backend is not None:
        backend.close()


class WasmBackend:
    """Makes wasm environments. Thread-safe: the pool calls it from many threads."""

    runtime = "wasm"
    # A spare is started whole (/tmp, store, instance, init): launch() has nothing to do
    # in-process, so without start() a spare would save nothing (decision 082, base.py).
    spare_init = True

    def __init__(self, work_dir: str, cache_dir: str | None = None, *, fuel: bool | None = None,
                 snapshots: bool = True, cpu_share: bool = True,
                 max_module_bytes: int = MAX_MODULE_BYTES) -> None:
        if fuel is None:
            # Off by default: counting fuel slows guest code; RUNNER_WASM_FUEL=1 turns it on.
            fuel = settings.current().wasm_fuel
        self.parts = SharedEngine.build(work_dir, cache_dir, fuel=fuel, cpu_share=cpu_share)
        self.fuel = fuel
        self.snapshots = snapshots
        self.max_module_bytes = max_module_bytes
        self.work_dir = work_dir
        self.cache = self.parts.cache
        self.cpu = self.parts.cpu
        if self.cpu is not None and not self.cpu.available:
            log.warning("wasm: CPU share not enforced (%s)", self.cpu.reason)
        self.cpu_enforcement = "cgroup-v1-thread" if self.cpu and self.cpu.available else "none"
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
        env = WasmEnvironment(version, self._prepare(version), self.parts)
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
            self.parts.ticker.expire_all()  # so they return now rather than at their deadlines
            give_up = time.monotonic() + 10.0
            while any(env.running for env in running) and time.monotonic() < give_up:
                time.sleep(0.005)
        self.parts.close()
        with self._lock:
            self._prepared.clear()

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
            prepared = prepare_version(self.parts, version, snapshots=self.snapshots,
                                       max_module_bytes=self.max_module_bytes)
            with self._lock:
                self._prepared[version.key] = prepared
            return prepared
