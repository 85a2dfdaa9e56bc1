"""Subprocess execution environments (the Python and Node.js runtimes).

One environment = one guest process (and whatever it forks), talking to the host over a
socketpair with msgpack frames (`protocol.py`), its stdout+stderr on a separate pipe the host
drains into the invocation's log. What differs per language is a `ProcessRuntime`: the command
line and the runtime's environment variables. Waiting for frames and draining the log pipe
is in process_io.py (`GuestChannel`, which ProcessEnvironment inherits).

Guarantees (beyond those of base.py):
* The guest gets only the environment built here (Lambda's variables plus the function's
  configuration); nothing of the server's environment leaks in.
* Limits are in force before `init` (limits.apply): memory and pids from before the
  runtime's exec where bwrap runs it (namespaces.Gate, decision 039), otherwise from its
  hello; the CPU quota from its hello.
* A guest's output is bounded per invocation (process_io.MAX_LOG_BYTES); the excess is dropped,
  marked.
* On timeout or crash the whole process group is killed and reaped before invoke() returns.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Protocol

from runner.confinement import limits, namespaces
from runner.environments.base import EnvState, InvokeOutcome, InvokeRequest
from runner.environments.process.channel import GuestChannel
from runner.environments.process.frames import FrameReader, encode, encode_marshal, send
from runner.environments.process.launch import (
    HELLO_TIMEOUT_S,
    INIT_TIMEOUT_S,
    guest_environment,
    place_at_gate,
)
from runner.errors import (
    EnvironmentGone,
    FunctionCrashed,
    FunctionError,
    FunctionInitError,
    FunctionOutOfMemory,
    FunctionTimeout,
    InternalError,
)
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

KILL_GRACE_S = 2.0
EXIT_WAIT_S = 1.0  # after EOF from the guest: how long its wrapper may take to exit


class ProcessRuntime(Protocol):
    """What a subprocess runtime contributes."""

    name: str
    address_space_limit: bool  # whether RLIMIT_AS is safe for this runtime

    def command(self, version: FunctionVersion) -> list[str]:
        """argv that starts the bootstrap for `version` (executable by absolute path)."""

    def environment(self, version: FunctionVersion) -> dict[str, str]:
        """Runtime-specific variables, added to the Lambda ones built by `guest_environment`."""

    def check_code(self, version: FunctionVersion) -> None:
        """Raise InvalidCodePackage if the code can never run (e.g. handler file missing)."""

    # Optional: `classify_death(version, returncode, logs) -> FunctionError | None` names a
    # runtime-specific death (e.g. V8's "JavaScript heap out of memory" abort) from the exit
    # status and what the guest printed; None falls back to the generic crash error.


class ProcessEnvironment(GuestChannel):
    """One guest process. See the module docstring for its guarantees."""

    def __init__(self, version: FunctionVersion, runtime: ProcessRuntime, tmp_root: str) -> None:
        self.version = version
        self.runtime = runtime
        self.state = EnvState.NEW
        self.init_duration_ms: float | None = None
        self.init_logs = b""
        self._tmp_root = tmp_root
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._logr: int | None = None
        self._reader = FrameReader()
        self._poll: select.poll | None = None
        self._log_eof = False
        self._enforcement: limits.Enforcement | None = None
        self._tmp_dir: str | None = None
        self._maxrss = 0
        # The context dict last sent to the guest: an invoke frame carries the context only
        # when the request's is another object (the Runner reuses one per version, so nearly
        # every frame omits it; the guest keeps the last one it got).
        self._ctx_sent: dict | None = None
        # Invoke frames in marshal for runtimes that declare they read it (protocol.py says
        # why it is safe in that direction only).
        self._marshal = bool(getattr(runtime, "marshal_frames", False))
        self._gate: namespaces.Gate | None = None  # set by _spawn until launch() is done with it
        self.pid = 0

    # ------------------------------------------------------------------ lifecycle

    def launch(self) -> None:
        """Start the runtime process, wait for its hello and apply the limits; no guest code
        runs yet. A pool may call this ahead of demand (pre-started environments); start() then
        only runs init."""
        if self._proc is not None:
            return
        try:
            self._spawn()
            spec = limits.LimitSpec.for_version(
                self.version, address_space=self.runtime.address_space_limit)
            if self._gate is not None:
                # Placed before the runtime starts: its own start-up memory is the
                # environment's (namespaces.Gate says why).
                self._enforcement = place_at_gate(self._gate, self._proc, spec)
            hello = self._wait_message(time.monotonic() + HELLO_TIMEOUT_S)
            if hello is None or hello.get("t") != "hello":
                raise FunctionInitError("Runtime failed to start", "Runtime.ExitError")
            # Limits here rather than in start(): the bootstrap is parked waiting for `init`, so
            # still no guest code runs unconstrained, and a pre-started environment's cold
            # start skips the cgroup set-up (measured ~11 ms of a Node cold start).
            if self._enforcement is None:  # no gate: placed now, CPU quota included
                self._enforcement = limits.apply(self._proc.pid, spec)
            else:
                self._enforcement.limit_cpu()
            # Read once now the counters every invocation reads: the cgroup files are opened
            # on first use, and that first use would otherwise be the cold start's invocation.
            self.max_memory()
            self._enforcement.pids_limit_hit()
        except BaseException:
            self.destroy()
            raise
        finally:
            if self._gate is not None:
                self._gate.close()
                self._gate = None

    def launched_alive(self) -> bool:
        """Whether launch() ran and the runtime process is still running (for pre-start pools:
        a spare may be killed from outside while it waits). poll() only reaps our own child."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self.launch()
        if self.state is not EnvState.READY:  # zygote children did it in launch()
            self._init_handshake()

    def _init_handshake(self) -> None:
        """Send `init` and wait for `ready`: the guest's init phase, INIT -> READY. On any
        failure the environment is destroyed and the init error raised."""
        self.state = EnvState.INIT
        try:
            self._await_ready()
        except BaseException:
            self.destroy()
            raise

    def _await_ready(self) -> None:
        cfg = self.version.config
        send(self._sock, {"t": "init"})
        init_timeout = max(INIT_TIMEOUT_S, cfg.timeout_s)
        logs = bytearray()
        msg = self._wait_message(time.monotonic() + init_timeout, logs)
        self.init_logs = bytes(logs)
        if msg is None:
            if self._bad_frame is not None:
                raise FunctionInitError(f"Runtime sent an invalid response during init: "
                                        f"{self._bad_frame}", "Runtime.InvalidResponse")
            if self._exited_or_kill() and not self._timed_out:
                raise self._death_error(during="init", logs=logs)
            raise FunctionTimeout.after(init_timeout)
        self._maxrss = max(self._maxrss, int(msg.get("maxrss_kb", 0)) * 1024)
        self.init_duration_ms = float(msg.get("init_ms", 0.0))
        if msg["t"] == "init_error":
            err = FunctionError.from_document(msg.get("error") or {})
            raise FunctionInitError(err.message, err.error_type, err.stack_trace)
        if msg["t"] != "ready":
            raise FunctionInitError(f"unexpected frame {msg['t']!r} during init", "Runtime.InvalidResponse")
        self.state = EnvState.READY

    def _spawn(self) -> None:
        self._tmp_dir = tempfile.mkdtemp(prefix=f"env-{self.version.name}-", dir=self._tmp_root)
        host_sock, guest_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        logr, logw = os.pipe()
        env = guest_environment(self.version, self._tmp_dir)
        env.update(self.runtime.environment(self.version))
        env["_RUNNER_FD"] = str(guest_sock.fileno())
        self._gate = gate = namespaces.new_gate()
        try:
            # No preexec_fn: the server is multi-threaded. start_new_session gives the guest its
            # own process group, so a kill reaches everything it forked (unless it escapes with
            # setsid; the cgroup enforcement of limits.py closes that gap where available).
            self._proc = subprocess.Popen(
                namespaces.wrap(self.runtime.command(self.version), self.version, self._tmp_dir,
                               address_space=self.runtime.address_space_limit, gate=gate),
                env=env,
                cwd=self.version.code_dir,
                stdin=subprocess.DEVNULL,
                stdout=logw,
                stderr=logw,
                pass_fds=(guest_sock.fileno(), *(gate.child_fds if gate else ())),
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            host_sock.close()
            os.close(logr)
            raise InternalError(f"cannot start the {self.runtime.name} runtime: {exc}") from exc
        finally:
            guest_sock.close()
            os.close(logw)
            if gate is not None:
                gate.spawned()
        self.pid = self._proc.pid
        self._sock = host_sock
        self._sock.setblocking(False)
        self._logr = logr
        os.set_blocking(logr, False)
        self._timed_out = False

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        if self.state is not EnvState.READY:
            raise InternalError(f"environment is {self.state.value}, not ready")
        self.state = EnvState.BUSY
        logs = bytearray()
        t0 = time.monotonic()
        frame = {"t": "invoke", "id": request.request_id, "payload": request.payload}
        if request.deadline_ms:
            frame["deadline_ms"] = request.deadline_ms
        if request.context is not self._ctx_sent:
            frame["ctx"] = request.context
            self._ctx_sent = request.context
        try:
            self._send_frame((encode_marshal if self._marshal else encode)(frame), request.deadline)
        except EnvironmentGone:
            self.destroy()  # died while idle: the caller runs the invocation elsewhere
            raise
        except OSError:
            pass  # the guest died mid-frame; _wait_message sees EOF and reports why
        msg = self._wait_message(request.deadline, logs)
        duration_ms = (time.monotonic() - t0) * 1000.0
        if msg is not None:
            self._maxrss = max(self._maxrss, int(msg.get("maxrss_kb", 0)) * 1024)
        error: FunctionError | None = None
        payload: bytes | None = None
        reusable = True
        if msg is None:
            reusable = False
            if self._bad_frame is not None:
                error = FunctionCrashed(f"Runtime sent an invalid response: {self._bad_frame}",
                                        "Runtime.InvalidResponse")
            elif self._timed_out or not self._exited_or_kill():
                error = FunctionTimeout.after(request.timeout_s)
            else:
                error = self._death_error(during="invoke", logs=logs)
        elif msg["t"] == "result" and msg.get("id") == request.request_id:
            payload = bytes(msg.get("payload") or b"null")
        elif msg["t"] == "error":
            doc = msg.get("error") or {}
            error = FunctionError.from_document(doc)
            if error.error_type == "Runtime.OutOfMemory":
                error = FunctionOutOfMemory(
                    FunctionOutOfMemory.at(self.version.config.memory_mb, "MemoryError").message,
                    stack_trace=error.stack_trace,
                )
            reusable = not msg.get("fatal", False)
        else:
            error = FunctionCrashed(f"Runtime sent an unexpected frame {msg['t']!r}", "Runtime.InvalidResponse")
            reusable = False
        # (limits.py) a guest that hit its pids limit (fork bomb) has processes
        # its code did not expect; replace the environment rather than reuse it.
        if reusable and self._enforcement is not None and self._enforcement.pids_limit_hit():
            reusable = False
        if reusable:
            self.state = EnvState.READY
        else:
            self.destroy()
        return InvokeOutcome(payload, error, bytes(logs), duration_ms, self.max_memory(), reusable)

    def destroy(self) -> None:
        self.state = EnvState.DEAD
        proc, self._proc = self._proc, None
        if proc is not None:
            self._kill_group(proc)
        for closer in (self._sock, ):
            if closer is not None:
                closer.close()
        self._sock = None
        self._poll = None
        if self._logr is not None:
            os.close(self._logr)
            self._logr = None
        if self._enforcement is not None:
            # keep the cgroup's peak for the outcome built after destroy()
            self._maxrss = max(self._maxrss, self._enforcement.max_memory_bytes())
            self._enforcement.release()
            self._enforcement = None
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    def memory_bytes(self) -> int:
        # the cgroup's charge covers every process of the environment
        current = self._enforcement.memory_bytes() if self._enforcement else 0
        if current:
            return current
        try:
            import psutil

            return psutil.Process(self.pid).memory_info().rss if self.pid else 0
        except Exception:
            return 0

    def max_memory(self) -> int:
        peak = self._enforcement.max_memory_bytes() if self._enforcement else 0
        return max(peak, self._maxrss)

    # ------------------------------------------------------------------ internals

    def _exited_or_kill(self) -> bool:
        """True if the process has already exited (crash) rather than being alive (timeout)."""
        proc = self._proc
        if proc is None:
            return True
        try:
            # the guest runs under bwrap's init, so the process we hold exits a
            # few ms after the guest dies (e.g. OOM-killed); give the chain time to unwind.
            proc.wait(timeout=EXIT_WAIT_S)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _death_error(self, during: str, logs: bytes | bytearray = b"") -> FunctionError:
        proc = self._proc
        rc = proc.returncode if proc is not None else None
        rc = namespaces.guest_returncode(rc)  # the wrapper reports 128+signal
        memory_mb = self.version.config.memory_mb
        if self._enforcement is not None and self._enforcement.oom_killed():
            return FunctionOutOfMemory.at(memory_mb, "killed by the kernel's OOM killer")
        classify = getattr(self.runtime, "classify_death", None)  # optional runtime hook
        if classify is not None:
            named = classify(self.version, rc, bytes(logs))
            if named is not None:
                return named
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
            if -rc == signal.SIGKILL:
                return FunctionCrashed(f"Runtime exited with error: signal: killed ({sig})")
            return FunctionCrashed(f"Runtime exited with error: signal {sig}")
        return FunctionCrashed(f"Runtime exited with error: exit status {rc} during {during}")

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        # The guest leads its own process group (start_new_session), so killpg reaches its
        # children too. SIGKILL: a hostile guest can ignore anything gentler.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                # Bounded: whoever must reap it (we, or a stopped zygote) may not, and a
                # destroy must never hold an invocation, the reaper or shutdown.
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("pid %s still not reaped %.0f s after SIGKILL; moving on", proc.pid,
                            2 * KILL_GRACE_S)
