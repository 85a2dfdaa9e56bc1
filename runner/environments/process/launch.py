"""How a guest process starts: spawned at the gate, placed in its limits, hello, then init.

The mechanism every out-of-process runtime shares, written once: plain environments
(environment.py) and the Python zygote (python/zygote_process.py); Node snapshot builds
(node/snapshot_build.py) use its gate. What the guest sees (its environment variables) is policy, in lambda_env.py.

The start-up of a guest, in order (docs/guest-protocol.md)::

    spawn()         socketpair + log pipe, the runtime under namespaces.wrap, held at the gate
    place_at_gate() memory and pids limits before the runtime's exec, then the gate is released
    await_hello()   the runtime is up; limits complete (CPU quota; all of them without a gate)
    run_init()      `init`, then `ready` or `init_error`: the function's init phase

Invariant (docs/decisions/002, 039): no guest code runs before its limits are in force. The
runtime's bootstrap runs before `init`, function code only after it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from runner.confinement import egress, limits, namespaces
from runner.environments.process.channel import GuestChannel
from runner.errors import (
    FunctionError,
    FunctionInitError,
    InitInvalidResponse,
    InternalError,
    RuntimeExited,
)
from runner.model import FunctionVersion

__all__ = ["HELLO_TIMEOUT_S", "INIT_TIMEOUT_S", "InitReply", "Started", "await_hello",
           "place_at_gate", "run_init", "spawn"]

INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit, at least the function's own timeout
# The init boost (issue 20, docs/decisions/058): the init phase runs with at least this many CPUs,
# whatever the function's memory, then the function's own share is put back before its first
# invocation. 1.0 is the share of a 1,769 MB function (Lambda's full vCPU): a heavy init at
# 128 MB takes what it takes at 1,769 MB instead of ~14 times longer. Bounded by the init
# phase's own limit (INIT_TIMEOUT_S or the timeout), so a hostile init can hold one CPU for
# at most that long per cold start, and cold starts are bounded by the concurrency limits.
INIT_BOOST_CPUS = 1.0
HELLO_TIMEOUT_S = 10.0  # interpreter start; generous because CI machines are shared


@dataclass
class Started:
    """A runtime process just spawned: nothing of it runs yet where there is a gate."""

    proc: subprocess.Popen
    channel: GuestChannel  # the host's ends of its socket and log pipe; the caller closes it
    # Holds the sandbox before the runtime's exec (namespaces.Gate), None without bwrap. The
    # caller places it (place_at_gate) and closes it; on failure only after killing the
    # process: closing the gate releases a sandbox still held.
    gate: namespaces.Gate | None


def spawn(argv: list[str], version: FunctionVersion, tmp_dir: str, env: dict[str, str], *,
          address_space: bool, what: str, packets: bool = False,
          seccomp_program: bytes | None = None) -> Started:
    """Start `argv` for `version` in its sandbox, with exactly `env` (lambda_env.py) plus the
    channel's descriptor number in `_RUNNER_FD`. `packets`: a SOCK_SEQPACKET channel (the
    zygote's control socket) instead of a stream. `seccomp_program`: the filter bwrap loads,
    when not the guest's (a zygote's, python/env_namespaces.py). Raises InternalError if it cannot start."""
    host_sock, guest_sock = socket.socketpair(
        socket.AF_UNIX, socket.SOCK_SEQPACKET if packets else socket.SOCK_STREAM)
    logr, logw = os.pipe()
    gate = None
    try:
        gate = namespaces.new_gate(seccomp_program)
        # No preexec_fn: the server is multi-threaded, and code run between fork and exec
        # could take a lock another thread held at the fork. Popen's own child path needs
        # none: pass_fds + close_fds leave the child exactly its socket end, the log pipe as
        # stdout/stderr and the gate's pipes. start_new_session gives the guest its own
        # process group, so a kill reaches everything it forked (unless it escapes with
        # setsid; the cgroup enforcement of confinement/limits.py closes that gap where
        # available).
        proc = subprocess.Popen(
            namespaces.wrap(argv, version, tmp_dir, address_space=address_space, gate=gate),
            env={**env, "_RUNNER_FD": str(guest_sock.fileno())},
            cwd=version.code_dir,
            stdin=subprocess.DEVNULL,
            stdout=logw,
            stderr=logw,
            pass_fds=(guest_sock.fileno(), *(gate.child_fds if gate else ())),
            close_fds=True,
            start_new_session=True,
        )
    except BaseException as exc:
        # Nothing started: our ends of the channel, the log pipe and the gate go too.
        host_sock.close()
        os.close(logr)
        if gate is not None:
            gate.close()
        if isinstance(exc, OSError):
            raise InternalError(f"cannot start {what}: {exc}") from exc
        raise
    finally:
        # The child's ends: it has its own copies now (or never will). Holding the write end
        # of the log pipe would keep it from reaching EOF when the guest exits.
        guest_sock.close()
        os.close(logw)
        if gate is not None:
            gate.spawned()
    return Started(proc, GuestChannel(host_sock, logr, packets=packets), gate)


def place_at_gate(gate: namespaces.Gate, proc, spec: limits.LimitSpec) -> limits.Enforcement:
    """Limits for a sandbox bwrap holds before the runtime's exec (namespaces.Gate): memory and
    pids now, CPU left unlimited until await_hello() (the runtime's start-up runs at full
    speed, as before). Then the sandbox is released. Raises RuntimeExited if bwrap never got
    there (it exited: bad mount, missing binary)."""
    child = gate.wait_sandbox(HELLO_TIMEOUT_S)
    if child is None:
        raise RuntimeExited("Runtime failed to start (sandbox set-up failed)")
    enforcement = limits.apply(proc.pid, spec, cpu_later=True)
    # The way out the function's network policy allows, opened before any guest code runs
    # (confinement/egress.py); it goes with the limits (Enforcement.release).
    try:
        way_out = egress.attach(child, spec.network_policy)
    except BaseException:
        enforcement.release()
        raise
    if way_out is not None:
        enforcement.on_release(way_out.close)
    gate.release()
    return enforcement


def await_hello(channel: GuestChannel, proc, spec: limits.LimitSpec,
                placed: limits.Enforcement | None) -> limits.Enforcement:
    """Wait for the runtime's hello, then complete its limits: the CPU quota of an environment
    placed at the gate (`placed`), or every limit now where there was no gate. Raises
    RuntimeExited if no hello came; `placed` stays the caller's to release then.

    Safe to apply here rather than before the exec: the bootstrap is parked waiting for
    `init`, so still no function code runs unconstrained."""
    hello = channel.wait(time.monotonic() + HELLO_TIMEOUT_S)
    if hello is None or hello.get("t") != "hello":
        raise RuntimeExited("Runtime failed to start")
    if placed is None:
        return limits.apply(proc.pid, spec)
    placed.limit_cpu()
    return placed


@dataclass
class InitReply:
    """What a guest answered to `init`, and what it printed during its init phase."""

    message: dict[str, Any] | None  # `ready`, `init_error` or another frame; None: no reply
    logs: bytes
    timeout_s: float  # how long the init phase could take
    timed_out: bool  # no reply within timeout_s
    bad_frame: str | None  # why the reply broke the protocol

    @property
    def answered(self) -> bool:
        """Whether the guest replied at all, validly or not. If not, it exited or ran past
        timeout_s; why it exited only the process's owner can tell (its status, its cgroup)."""
        return self.message is not None or self.bad_frame is not None

    def error(self) -> FunctionInitError | None:
        """The failure the reply reports: the guest's own init error, or InitInvalidResponse
        for a frame the protocol does not allow here. None for `ready` (or no reply)."""
        if self.bad_frame is not None:
            return InitInvalidResponse(f"Runtime sent an invalid response during init: {self.bad_frame}")
        msg = self.message
        if msg is None or msg["t"] == "ready":
            return None
        if msg["t"] == "init_error":
            err = FunctionError.from_document(msg.get("error") or {})
            return FunctionInitError(err.message, err.error_type, err.stack_trace)
        return InitInvalidResponse(f"unexpected frame {msg['t']!r} during init")


def run_init(channel: GuestChannel, version: FunctionVersion,
             enforcement: limits.Enforcement | None = None,
             budget_s: float | None = None, warmup: bool = False) -> InitReply:
    """Send `init` and wait for the reply: the function's init phase, bounded by Lambda's init
    limit or the function's timeout, whichever is longer; or by `budget_s` when given (a
    pre-initialised spare's init, pool/prestart.py: past it the spare is dropped). With
    `enforcement`, the phase runs with the init boost (INIT_BOOST_CPUS) and the function's CPU
    share is back in place when this returns, whatever the reply (the guest then waits for a
    frame: no user code runs between the reply and the restore). `warmup`: the guest also runs
    its own invoke path on a built-in no-op handler before `ready` (decision 074; Node.js
    spares; a guest that does not know the field ignores it)."""
    timeout_s = max(INIT_TIMEOUT_S, version.config.timeout_s) if budget_s is None else budget_s
    logs = bytearray()
    if enforcement is not None:
        enforcement.boost_cpu(INIT_BOOST_CPUS)
    try:
        channel.send_now({"t": "init", "warmup": True} if warmup else {"t": "init"})
        msg = channel.wait(time.monotonic() + timeout_s, logs)
    finally:
        if enforcement is not None:
            enforcement.limit_cpu()
    return InitReply(msg, bytes(logs), timeout_s, msg is None and channel.timed_out,
                     channel.bad_frame)
