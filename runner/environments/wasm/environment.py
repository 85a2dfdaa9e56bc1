"""One wasm execution environment (see backend.py for the runtime's guarantees).

Command environments hold no instance between invocations: each invoke() builds a store,
instantiates from the version's InstancePre (~20 us) and runs `_start`. Reactor environments
hold one store and instance for their whole life; a trap or exit inside it makes the
environment unusable (its memory may be mid-update), so the pool replaces it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time

import wasmtime

from runner.confinement import tmpfs
from runner.environments.base import EnvState, InvokeOutcome, InvokeRequest
from runner.environments.wasm import abi, call
from runner.environments.wasm.engine import TMP_PREFIX, SharedEngine
from runner.environments.wasm.guest_io import (
    MAX_LOG_BYTES,
    GuestIO,
    OutputWindow,
    bounded_log,
    output_payload,
)
from runner.environments.wasm.prepare import Prepared
from runner.environments.wasm.ticker import OnDeadline
from runner.errors import (
    FunctionCrashed,
    FunctionError,
    FunctionInitError,
    FunctionOutOfMemory,
    FunctionTimeout,
    InternalError,
    InvalidResponse,
    ResponseSizeTooLarge,
)
from runner.model import MAX_PAYLOAD_BYTES, FunctionVersion

_GUEST_FAILURES = (wasmtime.Trap, wasmtime.WasmtimeError)


class WasmEnvironment:
    def __init__(self, version: FunctionVersion, prepared: Prepared,
                 parts: SharedEngine) -> None:
        self.version = version
        self.state = EnvState.NEW
        self.init_duration_ms: float | None = None
        self.init_logs = b""
        self.restored_from_snapshot = False
        self.last_fuel_consumed: int | None = None
        # A bound on a reactor's init shorter than Lambda's, for a spare initialised ahead of
        # demand (pool/prestart.py, PREINIT_BUDGET_S); None: the function's own limit.
        self.init_budget_s: float | None = None
        self._prepared = prepared
        self._parts = parts
        self._io: GuestIO | None = None
        self._io_dir: str | None = None
        self._tmp_dir: str | None = None
        self._tmp_mounted = False
        self._store: wasmtime.Store | None = None  # reactors only
        self._memory: wasmtime.Memory | None = None
        self._alloc: call.TypedCall | None = None  # the ABI's two exports, called
        self._handle: call.TypedCall | None = None  # directly (call.py says why)
        self._memory_now = 0
        self._memory_peak = 0
        self._watches: list = []
        self._output_ends = (0, 0)  # reactors: stdout/stderr sizes after the last collect
        self._lock = threading.Lock()
        self._running = False  # start() or invoke() is executing guest code right now
        self._doomed = False  # destroy() came during a call; the call tears down when it ends
        self._lane = None  # cpu.Lane: the CPU cgroup and the thread inside it
        self._cpu = None
        self._thread = None  # runs guest calls inside the CPU cgroup

    # ------------------------------------------------------------------ lifecycle

    def launch(self) -> None:
        """Nothing to launch in-process: a spare is started whole (prestart.py, decision 082)."""

    def start(self) -> None:
        with self._lock:
            if self.state is EnvState.READY and not self._doomed:
                return  # a spare started ahead of demand (prestart.py): its init already ran
            if self.state is not EnvState.NEW or self._doomed:
                raise InternalError(f"environment is {self.state.value}; start() runs once")
            self.state = EnvState.INIT
            self._running = True
        t0 = time.monotonic()
        try:
            b = self._parts
            self._io_dir = tempfile.mkdtemp(prefix="env-", dir=b.io_root)
            self._tmp_dir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=b.work_dir)
            # /tmp is a tmpfs of the function's ephemeral storage (capped at its memory): a write
            # past it is ENOSPC inside the guest, never the work disk filling (tmpfs.py).
            cfg = self.version.config
            self._tmp_mounted = tmpfs.mount_capped(
                self._tmp_dir, tmpfs.size_bytes(cfg.ephemeral_storage_mb, cfg.memory_mb))
            self._io = GuestIO(self._io_dir, self._tmp_dir)
            # A guest call runs on one thread, which can never use more than one CPU: a share
            # of a whole vCPU or more (memory >= 1769 MB) would never throttle it, and the lane
            # would only add two thread hand-offs to every call (~0.1 ms each way here).
            if b.cpu is not None and self.version.config.vcpus < 1.0:
                self._lane = b.cpu.acquire(self.version.config.vcpus)
                if self._lane is not None:
                    self._cpu, self._thread = self._lane.group, self._lane.thread
            if self._prepared.shape.kind == "reactor":
                self._start_reactor()
            self.init_duration_ms = (time.monotonic() - t0) * 1000.0
        except BaseException:
            self._finish(False)
            raise
        if not self._finish(True):
            raise InternalError("environment was destroyed while it started")

    def _start_reactor(self) -> None:
        prep, b, io = self._prepared, self._parts, self._io
        snap = prep.snapshot
        store = b.new_store(self.version, io, stdin=False)
        self._store = store
        out = OutputWindow(io, io.stdout_fd, 0, MAX_LOG_BYTES)
        err = OutputWindow(io, io.stderr_fd, 0, MAX_LOG_BYTES)
        init_timeout = self.init_budget_s or max(abi.INIT_TIMEOUT_S, self.version.config.timeout_s)

        def run():  # on the guest thread: nothing but the guest's own code
            exports = None
            try:
                exports = (snap.pre if snap else prep.pre).instantiate(store).exports(store)
                if snap is None:
                    # wasi-libc's constructors first, then the function's own init phase.
                    if prep.shape.has_initialize:
                        exports[abi.WASI_REACTOR_INIT](store)
                    if prep.shape.has_init:
                        exports[abi.INIT_EXPORT](store)
            except _GUEST_FAILURES as exc:
                return exports, exc
            return exports, None

        self._enter(store, time.monotonic() + init_timeout, out, err)
        try:
            exports, failure = self._on_guest_thread(run)
        finally:
            self._leave(out, err)
        if exports is not None:
            self._memory = exports[abi.MEMORY_EXPORT]
            self._track_memory()
        logs = self._collect_logs(out, err)
        self.init_logs = prep.snapshot_note.encode() + logs
        self.restored_from_snapshot = snap is not None
        if failure is not None:
            error, _ = abi.classify(
                failure, timeout_s=init_timeout, memory_mb=self.version.config.memory_mb,
                memory_bytes=self._memory_now, during="init")
            if isinstance(error, (FunctionTimeout, FunctionOutOfMemory)):
                raise error
            raise FunctionInitError(error.message, stack_trace=error.stack_trace)
        self._alloc = call.alloc_call(exports[abi.ALLOC_EXPORT])
        self._handle = call.handler_call(exports[prep.shape.handler])

    def destroy(self) -> None:
        with self._lock:
            if self._running:
                # A guest call is executing in the store on the lane thread; freeing the store
                # under it would crash the server. The call ends by its deadline (or at once
                # when the backend closes: ticker.expire_all) and tears down then.
                self._doomed = True
                return
            self.state = EnvState.DEAD
        self._teardown()

    @property
    def running(self) -> bool:
        return self._running

    def _finish(self, keep: bool) -> bool:
        """End of a guest phase (start or invoke): READY if kept, else torn down."""
        with self._lock:
            self._running = False
            keep = keep and not self._doomed
            self.state = EnvState.READY if keep else EnvState.DEAD
        if not keep:
            self._teardown()
        return keep

    def _teardown(self) -> None:
        store, self._store = self._store, None
        self._memory = self._alloc = self._handle = None
        if store is not None:
            store.close()
        if self._io is not None:
            self._io.close()
            self._io = None
        lane, self._lane = self._lane, None
        self._cpu = self._thread = None
        if lane is not None:
            self._parts.cpu.release(lane)
        if self._tmp_mounted:
            tmpfs.unmount(self._tmp_dir)
            self._tmp_mounted = False
        for d in (self._io_dir, self._tmp_dir):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        self._io_dir = self._tmp_dir = None

    def memory_bytes(self) -> int:
        # Updated after each guest call: the store is not thread-safe, so the pool's stats thread
        # must not touch it while an invocation runs.
        return self._memory_now

    # ------------------------------------------------------------------ invocation

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        with self._lock:
            if self.state is not EnvState.READY or self._doomed:
                raise InternalError(f"environment is {self.state.value}, not ready")
            self.state = EnvState.BUSY
            self._running = True
        try:
            if self._prepared.shape.kind == "command":
                outcome = self._invoke_command(request)
            else:
                outcome = self._invoke_reactor(request)
        except BaseException:
            self._finish(False)
            raise
        if self._doomed and isinstance(outcome.error, FunctionTimeout):
            outcome.error = FunctionCrashed(
                "Runtime exited: the environment was shut down during the invocation")
        if not self._finish(outcome.reusable):
            outcome.reusable = False
        return outcome

    def _invoke_command(self, request: InvokeRequest) -> InvokeOutcome:
        io, b = self._io, self._parts
        io.set_stdin(request.payload)
        store = b.new_store(self.version, io, stdin=True)  # (re)opens stdout/stderr with O_TRUNC
        try:
            out = OutputWindow(io, io.stdout_fd, 0, MAX_PAYLOAD_BYTES)
            err = OutputWindow(io, io.stderr_fd, 0, MAX_LOG_BYTES)
            pre = self._prepared.pre

            def run():  # on the guest thread: nothing but the guest's own code
                exports = None
                try:
                    exports = pre.instantiate(store).exports(store)
                    exports[abi.COMMAND_ENTRY](store)
                except wasmtime.ExitTrap as exc:
                    return exports, (exc if exc.code != 0 else None)
                except _GUEST_FAILURES as exc:
                    return exports, exc
                return exports, None

            t0 = time.monotonic()
            self._enter(store, request.deadline, out, err)
            try:
                exports, failure = self._on_guest_thread(run)
            finally:
                self._leave(out, err)
            duration_ms = (time.monotonic() - t0) * 1000.0
            if exports is not None:
                try:
                    self._memory = exports[abi.MEMORY_EXPORT]
                    self._track_memory(store)
                except KeyError:
                    pass  # a command need not export its memory
            self._memory = None
            fuel_line = self._fuel_line(store)
        finally:
            store.close()
        stdout, stdout_overflow = out.collect(free=False)
        stderr, stderr_overflow = err.collect(free=False)
        logs = bounded_log(stderr, stderr_overflow) + fuel_line
        if failure is not None:
            error, _ = abi.classify(
                failure, timeout_s=request.timeout_s, memory_mb=self.version.config.memory_mb,
                memory_bytes=self._memory_now, during="invoke")
            # The next invocation gets a fresh instance anyway; only timeouts and OOM retire the
            # environment, as for the other runtimes, so the pool's accounting stays uniform.
            reusable = not isinstance(error, (FunctionTimeout, FunctionOutOfMemory))
            return InvokeOutcome(None, error, logs, duration_ms, self._memory_peak, reusable)
        if stdout_overflow:
            too_large = ResponseSizeTooLarge.of(io.size(io.stdout_fd), MAX_PAYLOAD_BYTES)
            return InvokeOutcome(None, too_large, logs, duration_ms, self._memory_peak, True)
        return InvokeOutcome(output_payload(stdout), None, logs, duration_ms, self._memory_peak)

    def _invoke_reactor(self, request: InvokeRequest) -> InvokeOutcome:
        io, store, memory = self._io, self._store, self._memory
        # The windows start where the previous call's collect() left the files: only guest
        # calls write to them, so no fstat is needed to find the start.
        out_start, err_start = self._output_ends
        out = OutputWindow(io, io.stdout_fd, out_start, MAX_LOG_BYTES)
        err = OutputWindow(io, io.stderr_fd, err_start, MAX_LOG_BYTES)
        payload = request.payload
        alloc, handle, memory_mb = self._alloc, self._handle, self.version.config.memory_mb

        def run():  # on the guest thread: nothing but the guest's own code
            ptr = 0
            try:
                # wasmtime returns i32 results signed; a pointer is unsigned (and a negative
                # start would make Memory.write count from the end of memory).
                ptr = alloc(store, len(payload)) & 0xFFFF_FFFF
                if ptr == 0 and payload:
                    return 0, FunctionOutOfMemory.at(memory_mb, f"alloc({len(payload)}) returned 0")
                memory.write(store, payload, ptr)
                return handle(store, ptr, len(payload)), None
            except _GUEST_FAILURES as exc:
                return 0, exc
            except IndexError:
                return 0, InvalidResponse(f"alloc returned {ptr}, which leaves no room for the "
                                          f"{len(payload)}-byte event in linear memory")

        t0 = time.monotonic()
        self._enter(store, request.deadline, out, err)
        try:
            result, failure = self._on_guest_thread(run)
        finally:
            self._leave(out, err)
        duration_ms = (time.monotonic() - t0) * 1000.0
        self._track_memory()
        logs = self._collect_logs(out, err) + self._fuel_line(store)
        if isinstance(failure, FunctionError):
            return InvokeOutcome(None, failure, logs, duration_ms, self._memory_peak, False)
        if failure is not None:
            error, _ = abi.classify(
                failure, timeout_s=request.timeout_s, memory_mb=self.version.config.memory_mb,
                memory_bytes=self._memory_now, during="invoke")
            return InvokeOutcome(None, error, logs, duration_ms, self._memory_peak, False)
        is_error, ptr, length = abi.decode_result(result)
        if length > MAX_PAYLOAD_BYTES:
            return InvokeOutcome(None, ResponseSizeTooLarge.of(length, MAX_PAYLOAD_BYTES), logs,
                                 duration_ms, self._memory_peak, True)
        if ptr + length > self._memory_now:
            error = InvalidResponse(f"{self._prepared.shape.handler} returned bytes "
                                    f"{ptr}..{ptr + length}, outside linear memory "
                                    f"({self._memory_now} bytes)")
            return InvokeOutcome(None, error, logs, duration_ms, self._memory_peak, False)
        data = bytes(memory.read(store, ptr, ptr + length))
        if is_error:
            return InvokeOutcome(None, abi.error_document(data), logs, duration_ms, self._memory_peak)
        return InvokeOutcome(output_payload(data), None, logs, duration_ms, self._memory_peak)

    # ------------------------------------------------------------------ helpers

    def _on_guest_thread(self, fn, *args):
        if self._thread is None:
            return fn(*args)
        return self._thread.call(fn, *args)

    def _enter(self, store: wasmtime.Store, deadline: float, *windows: OutputWindow) -> None:
        ticker = self._parts.ticker
        watches = [w.watch for w in windows]
        if self._cpu is not None:
            # Lifted one CFS period early: a throttled thread sleeps until its period ends, so
            # lifting exactly at the deadline would still cost up to a period of lateness.
            watches.append(OnDeadline(deadline - self._cpu.period_s, self._cpu.lift))
        self._watches = watches
        ticker.begin(*watches)
        store.set_epoch_deadline(ticker.ticks_until(deadline - time.monotonic()))
        if self._parts.fuel:
            store.set_fuel(abi.FUEL_BUDGET)

    def _leave(self, *windows: OutputWindow) -> None:
        self._parts.ticker.end(*self._watches)  # after this the ticker will not lift the quota
        self._watches = []
        if self._cpu is not None:
            self._cpu.restore()

    def _track_memory(self, store: wasmtime.Store | None = None) -> None:
        if self._memory is not None:
            self._memory_now = self._memory.data_len(store or self._store)
            self._memory_peak = max(self._memory_peak, self._memory_now)

    def _collect_logs(self, out: OutputWindow, err: OutputWindow) -> bytes:
        stdout, o1 = out.collect(free=True)
        stderr, o2 = err.collect(free=True)
        self._output_ends = (out.end, err.end)
        return bounded_log(stdout + stderr, o1 or o2)

    def _fuel_line(self, store: wasmtime.Store) -> bytes:
        """Fuel is refilled to FUEL_BUDGET before every call (_enter), so what is missing now is
        what this call consumed."""
        if not self._parts.fuel:
            return b""
        self.last_fuel_consumed = abi.FUEL_BUDGET - store.get_fuel()
        return f"[runner] fuel consumed: {self.last_fuel_consumed}\n".encode()

