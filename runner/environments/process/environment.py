"""Subprocess execution environments (the Python and Node.js runtimes): `ProcessEnvironment`.

One environment = one guest process (and whatever it forks), talking to the host over a
socketpair with msgpack frames (frames.py), its stdout+stderr on a separate pipe the host
drains into the invocation's log; the environment *has* a `GuestChannel` (channel.py) that owns
both. How the process starts (spawn, gate, hello, init) is launch.py; what it sees of its host
(environment variables) lambda_env.py. What differs per language is a `ProcessRuntime`: the
command line and the runtime's environment variables.

Guarantees (beyond those of base.py):
* The guest gets only the environment built by lambda_env.py (Lambda's variables plus the
  function's configuration); nothing of the server's environment leaks in.
* Limits are in force before `init` (limits.apply): memory and pids from before the
  runtime's exec where bwrap runs it (namespaces.Gate, decision 039), otherwise from its
  hello; the CPU quota from its hello.
* A guest's output is bounded per invocation (channel.MAX_LOG_BYTES); the excess is dropped,
  marked.
* On timeout or crash the whole process group is killed (SIGKILL queued) before invoke()
  returns; the reap and the cgroup removal follow in the background (teardown.py).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Protocol

import psutil

from runner.confinement import limits, namespaces
from runner.environments.base import EnvState, InvokeOutcome, InvokeRequest
from runner.environments.process import teardown
from runner.environments.process.channel import GuestChannel
from runner.environments.process.frames import encode, encode_marshal
from runner.environments.process.lambda_env import guest_environment
from runner.environments.process.launch import await_hello, place_at_gate, run_init, spawn
from runner.errors import (
    EnvironmentGone,
    FunctionCrashed,
    FunctionError,
    FunctionOutOfMemory,
    FunctionTimeout,
    InternalError,
    InvalidResponse,
    ResponseSizeTooLarge,
)
from runner.model import MAX_STREAMED_RESPONSE_BYTES, FunctionVersion

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
        """Runtime-specific variables, added to the Lambda ones (lambda_env.guest_environment)."""

    def check_code(self, version: FunctionVersion) -> None:
        """Raise InvalidCodePackage if the code can never run (e.g. handler file missing)."""

    # Optional: `classify_death(version, returncode, logs) -> FunctionError | None` names a
    # runtime-specific death (e.g. V8's "JavaScript heap out of memory" abort) from the exit
    # status and what the guest printed; None falls back to the generic crash error.


class ProcessEnvironment:
    """One guest process. See the module docstring for its guarantees."""

    def __init__(self, version: FunctionVersion, runtime: ProcessRuntime, tmp_root: str) -> None:
        self.version = version
        self.runtime = runtime
        self.state = EnvState.NEW
        self.init_duration_ms: float | None = None
        self.init_logs = b""
        # A bound on the init phase shorter than Lambda's, for a pool initialising a spare
        # ahead of demand (pool/prestart.py); None: the function's own limit.
        self.init_budget_s: float | None = None
        # Ask the guest to warm its invoke path up after init (decision 074; a spare only).
        self.init_warmup = False
        self._tmp_root = tmp_root
        self._proc: subprocess.Popen | None = None
        self._channel: GuestChannel | None = None  # set by _spawn, closed by destroy
        self._enforcement: limits.Enforcement | None = None
        self._frozen = False  # parked by freeze() while idle (see freeze)
        self._tmp_dir: str | None = None
        self._maxrss = 0
        # The context dict last sent to the guest: an invoke frame carries the context only
        # when the request's is another object (the Runner reuses one per version, so nearly
        # every frame omits it; the guest keeps the last one it got).
        self._ctx_sent: dict | None = None
        # Invoke frames in marshal for runtimes that declare they read it (frames.py says
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
            # Limits complete here rather than in start(): a pre-started environment's cold
            # start then skips the cgroup set-up (measured ~11 ms of a Node cold start).
            self._enforcement = await_hello(self._channel, self._proc, spec, self._enforcement)
            # Read once now the counters every invocation reads: the cgroup files are opened
            # on first use, and that first use would otherwise be the cold start's invocation.
            self.max_memory()
            self._enforcement.pids_limit_hit()
        except BaseException:
            self.destroy()  # kills the process before the gate below is closed (launch.Started)
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
        reply = run_init(self._channel, self.version, self._enforcement, self.init_budget_s,
                         warmup=self.init_warmup)
        self.init_logs = reply.logs
        if not reply.answered:
            if self._exited_or_kill() and not reply.timed_out:
                raise self._death_error(during="init", logs=reply.logs)
            raise FunctionTimeout.after(reply.timeout_s)
        msg = reply.message
        if msg is not None:
            self._maxrss = max(self._maxrss, int(msg.get("maxrss_kb", 0)) * 1024)
            self.init_duration_ms = float(msg.get("init_ms", 0.0))
        error = reply.error()
        if error is not None:
            raise error
        self.state = EnvState.READY

    def _spawn(self) -> None:
        self._tmp_dir = tempfile.mkdtemp(prefix=f"env-{self.version.name}-", dir=self._tmp_root)
        started = spawn(
            self.runtime.command(self.version), self.version, self._tmp_dir,
            guest_environment(self.version, self._tmp_dir, self.runtime.environment(self.version)),
            address_space=self.runtime.address_space_limit, what=f"the {self.runtime.name} runtime")
        self._proc, self._channel, self._gate = started.proc, started.channel, started.gate
        self.pid = started.proc.pid

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        if self.state is not EnvState.READY:
            raise InternalError(f"environment is {self.state.value}, not ready")
        if self._frozen:
            self.thaw()  # before the clock starts: the thaw is the platform's, not the handler's
        self.state = EnvState.BUSY
        logs = bytearray()
        t0 = time.monotonic()
        frame = {"t": "invoke", "id": request.request_id, "payload": request.payload}
        if request.deadline_ms:
            frame["deadline_ms"] = request.deadline_ms
        if request.trace_id:
            frame["trace"] = request.trace_id
        if request.context is not self._ctx_sent:
            frame["ctx"] = request.context
            self._ctx_sent = request.context
        sink = request.chunk_sink
        if sink is not None:
            frame["stream"] = True
        channel = self._channel
        try:
            channel.send((encode_marshal if self._marshal else encode)(frame), request.deadline)
        except EnvironmentGone:
            self.destroy()  # died while idle: the caller runs the invocation elsewhere
            raise
        except OSError:
            pass  # the guest died mid-frame; the wait sees EOF and reports why
        msg = channel.wait(request.deadline, logs)
        streamed = 0  # bytes of chunk frames so far (decision 075)
        while (sink is not None and msg is not None and msg["t"] == "chunk"
               and msg.get("id") == request.request_id):
            chunk = bytes(msg.get("payload") or b"")
            streamed += len(chunk)
            if streamed > MAX_STREAMED_RESPONSE_BYTES:
                break  # refused below; the guest is still writing, so it is replaced
            sink(chunk)
            msg = channel.wait(request.deadline, logs)
        duration_ms = (time.monotonic() - t0) * 1000.0
        if msg is not None:
            rss = int(msg.get("maxrss_kb", 0)) * 1024
            if rss > self._maxrss:  # (not max(): a builtin call on every invocation)
                self._maxrss = rss
        error: FunctionError | None = None
        payload: bytes | None = None
        reusable = True
        if streamed > MAX_STREAMED_RESPONSE_BYTES:
            error = ResponseSizeTooLarge.of(streamed, MAX_STREAMED_RESPONSE_BYTES)
            reusable = False
        elif msg is None:
            reusable = False
            if channel.bad_frame is not None:
                error = InvalidResponse(f"Runtime sent an invalid response: {channel.bad_frame}")
            elif channel.timed_out or not self._exited_or_kill():
                error = FunctionTimeout.after(request.timeout_s)
            else:
                error = self._death_error(during="invoke", logs=logs)
        elif msg["t"] == "result" and msg.get("id") == request.request_id:
            # A streamed result's bytes all went to the sink already.
            payload = (b"" if sink is not None and msg.get("streamed")
                       else bytes(msg.get("payload") or b"null"))
        elif msg["t"] == "error":
            doc = msg.get("error") or {}
            error = FunctionError.from_document(doc)
            if error.error_type == FunctionOutOfMemory.error_type:  # the guest's MemoryError
                error = FunctionOutOfMemory(
                    FunctionOutOfMemory.at(self.version.config.memory_mb, "MemoryError").message,
                    stack_trace=error.stack_trace,
                )
            reusable = not msg.get("fatal", False)
        else:
            error = InvalidResponse(f"Runtime sent an unexpected frame {msg['t']!r}")
            reusable = False
        # (confinement/limits.py) a guest that hit its pids limit (fork bomb) has processes
        # its code did not expect; replace the environment rather than reuse it.
        if reusable and self._enforcement is not None and self._enforcement.pids_limit_hit():
            reusable = False
        if reusable:
            self.state = EnvState.READY
        else:
            self.destroy()
        return InvokeOutcome(payload, error, bytes(logs), duration_ms, self.max_memory(), reusable)

    def freeze(self) -> None:
        """Park the idle environment's processes in its cgroup's freezer (the pool calls this
        when it keeps the environment idle): a guest's background threads, timers and children
        get no CPU between invocations, as on Lambda. invoke() thaws it first. Without a
        cgroup (rlimit-only hosts) nothing is frozen."""
        if self._enforcement is not None and self.state is EnvState.READY and not self._frozen:
            self._frozen = self._enforcement.freeze()

    def thaw(self) -> None:
        if self._frozen:
            self._frozen = False
            self._enforcement.thaw()

    def destroy(self) -> None:
        """Kill the environment now; reap it and remove its cgroups and scratch in the
        background (teardown.py says why and what each half holds)."""
        self.state = EnvState.DEAD
        proc, self._proc = self._proc, None
        enforcement, self._enforcement = self._enforcement, None
        if proc is not None:
            if self._frozen and enforcement is not None:
                # A frozen task dies of SIGKILL only once thawed (cgroup v1): queue the kill
                # first, so that the thaw lets no guest instruction run, then thaw.
                self._signal_kill(proc)
                self._frozen = False
                try:
                    enforcement.thaw()
                except OSError:
                    pass  # the group is gone already: so are its processes' freezer states
            self._signal_kill(proc)
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()  # after the kill: the guest never sees its channel closed while alive
        if enforcement is not None:
            # keep the cgroup's peak for the outcome built after destroy()
            self._maxrss = max(self._maxrss, enforcement.max_memory_bytes())
        tmp_dir, self._tmp_dir = self._tmp_dir, None
        if proc is not None or enforcement is not None or tmp_dir:
            teardown.submit(functools.partial(_finish_teardown, proc, enforcement, tmp_dir),
                            f"an environment of {self.version.key}")

    def memory_bytes(self) -> int:
        # the cgroup's charge covers every process of the environment
        current = self._enforcement.memory_bytes() if self._enforcement else 0
        if current:
            return current
        try:
            return psutil.Process(self.pid).memory_info().rss if self.pid else 0
        except Exception:
            return 0

    def max_memory(self) -> int:
        peak = self._enforcement.max_memory_bytes() if self._enforcement else 0
        return peak if peak > self._maxrss else self._maxrss

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
    def _signal_kill(proc: subprocess.Popen) -> None:
        # The guest leads its own process group (start_new_session), so killpg reaches its
        # children too. SIGKILL: a hostile guest can ignore anything gentler. What left the
        # group (setsid) dies with the cgroup, in the background part (_finish_teardown).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def _reap(proc: subprocess.Popen) -> None:
        """Wait (bounded) for a process already sent SIGKILL to be reaped."""
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


def _finish_teardown(proc, enforcement: limits.Enforcement | None, tmp_dir: str | None) -> None:
    """The background half of destroy() (teardown.py): kill what left the process group (a
    fork bomb's children forked while the SIGKILL was being delivered, a setsid'd daemon),
    reap, remove the cgroups, rmtree."""
    if enforcement is not None:
        try:
            enforcement.kill_all()
        except OSError:
            pass  # release() below tries again and logs
    if proc is not None:
        # Not signalled again: a forked environment's pid is reaped by its zygote and could
        # name another process by now. The SIGKILL destroy() queued is enough.
        ProcessEnvironment._reap(proc)
    if enforcement is not None:
        enforcement.release()
    if tmp_dir:
        shutil.rmtree(tmp_dir, ignore_errors=True)
