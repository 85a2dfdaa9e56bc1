"""A version's zygote process as the host sees it: start, init, fork, reap (zygote.py uses it).

`Zygote` starts runtimes/python_zygote.py inside the version's sandbox (namespaces.wrap, then
limits.apply before its init), runs the init phase once and then forks environments on
request over a control socket, passing each child its channel and log descriptors
(SCM_RIGHTS). The zygote reaps its children and reports each exit status and rusage, which
`ForkedProcess` (the part of subprocess.Popen that ProcessEnvironment uses) waits for.

Guarantees: every method of `Zygote` is thread-safe; a zygote that exits or stops answering
raises `ZygoteDead` from `fork`, and the caller builds a new one; pids the zygote reports are in
its PID namespace and are mapped to host pids (NSpid) before anything is signalled.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time

import psutil

from runner.confinement import limits, namespaces
from runner.environments.process.launch import (
    HELLO_TIMEOUT_S,
    INIT_TIMEOUT_S,
    guest_environment,
    place_at_gate,
)
from runner.environments.python.guest import _mpack
from runner.environments.python.runtime import ZYGOTE
from runner.errors import FunctionError, FunctionInitError, InternalError, ZygoteDead
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

FORK_TIMEOUT_S = 10.0  # unanswered this long: the zygote is wedged (generous: CI is shared)
# A child that is dead (a zombie) and still unreported this long after a wait began is taken as
# exited: a live zygote reaps and reports within milliseconds, so this only trips when it cannot.
REPORT_GRACE_S = 0.5
MAX_PACKET = 1 << 16

# Memory a live forked environment leaves charged to the zygote's cgroup. A page is charged to
# the group of the process that first touched it; after a fork, every page the zygote writes
# again (its fork loop's objects, its stack, malloc state) is copied for the zygote, and the
# original stays with the child, still charged to the zygote's group, until that child exits.
# The fork's page-table copy is charged there too. Measured per live child: 1.5 MB for a
# 10 MB zygote, 1.8 MB for a 147 MB one (page tables: ~1/512 of the zygote's memory). Without
# room for it, the zygote of a 128 MB function was OOM-killed at ~77 live environments, and
# its PID namespace took every environment of the version with it.
CHILD_CHARGE_BYTES = 2 * limits.MB  # the fixed part, rounded up from 1.5 MB
CHILD_CHARGE_SHARE = 256  # plus memory / 256: twice the page tables of a zygote at its limit
# Children beyond the version's concurrency that may be alive at once: pre-started spares
# (pool/prestart.MAX_PER_VERSION; this layer does not import the pool) and environments being
# destroyed while their replacements start.
SPARE_CHILDREN = 8


def zygote_memory_limit(version: FunctionVersion) -> int:
    """The zygote's memory limit once its init is done: the function's memory (init ran under
    exactly that) plus room for what its live children leave charged to its group. Bounded by
    the concurrency the function asked for; the zygote itself runs only the fork loop by then."""
    memory = version.config.memory_mb * limits.MB
    children = version.config.concurrency + SPARE_CHILDREN
    return memory + children * (CHILD_CHARGE_BYTES + memory // CHILD_CHARGE_SHARE)


class Zygote:
    """The host's handle on one version's zygote process. Thread-safe."""

    def __init__(self, version: FunctionVersion, runtime, tmp_root: str) -> None:
        import subprocess
        import tempfile

        self.version = version
        self.tmp_dir = tempfile.mkdtemp(prefix=f"zygote-{version.name}-", dir=tmp_root)
        host, guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        logr, logw = os.pipe()
        env = guest_environment(version, self.tmp_dir)
        env.update(runtime.environment(version))
        env["_RUNNER_FD"] = str(guest.fileno())
        argv = [sys.executable, "-I", "-S", "-B", ZYGOTE]
        # Held before the interpreter starts and placed in the version's cgroups first, as a
        # plain environment is (process.place_at_gate): the zygote's start-up is then charged
        # to its own group, and its forked children's shared pages with it.
        self._gate = namespaces.new_gate()
        try:
            # Same spawn path as a plain environment (no preexec_fn; own session).
            self.proc = subprocess.Popen(
                namespaces.wrap(argv, version, self.tmp_dir, gate=self._gate), env=env,
                cwd=version.code_dir, stdin=subprocess.DEVNULL, stdout=logw, stderr=logw,
                pass_fds=(guest.fileno(), *(self._gate.child_fds if self._gate else ())),
                close_fds=True, start_new_session=True)
        except BaseException:
            # Nothing started: our ends of the channel, the log pipe and the gate go too.
            host.close()
            os.close(logr)
            if self._gate is not None:
                self._gate.close()
            raise
        finally:
            guest.close()
            os.close(logw)
            if self._gate is not None:
                self._gate.spawned()
        self.sock = host
        self._logr = logr
        self._close_lock = threading.Lock()
        self._closing = False
        self._lock = threading.Lock()  # one fork request in flight at a time
        self._cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._exits: dict[int, tuple[int, int]] = {}  # ns pid -> (status, maxrss_kb)
        self._seq = 0
        self.alive = True
        self.forkable = False
        self.init_ms = 0.0
        self.init_logs = b""
        self.init_error: FunctionError | None = None
        self.enforcement: limits.Enforcement | None = None
        self._reader: threading.Thread | None = None
        self._host_pid: int | None = None
        try:
            self._initialise(runtime)
        except BaseException:
            self.close()
            raise

    def _initialise(self, runtime) -> None:
        spec = limits.LimitSpec.for_version(self.version, address_space=runtime.address_space_limit)
        if self._gate is not None:
            try:
                self.enforcement = place_at_gate(self._gate, self.proc, spec)
            except FunctionInitError as exc:
                raise ZygoteDead(str(exc)) from None  # close() kills it, then closes the gate
            self._gate.close()
            self._gate = None
        self.sock.settimeout(HELLO_TIMEOUT_S)
        hello = self._recv()
        if hello is None or hello.get("t") != "hello":
            raise ZygoteDead(f"zygote exited before its hello (status {self.proc.poll()})")
        if self.enforcement is None:  # no gate: placed now, CPU quota included
            self.enforcement = limits.apply(self.proc.pid, spec)
        else:
            self.enforcement.limit_cpu()
        self.sock.send(_mpack.packb({"t": "init"}))
        self.sock.settimeout(max(INIT_TIMEOUT_S, self.version.config.timeout_s))
        try:
            msg = self._recv()
        except socket.timeout:
            msg = None
        except Exception as exc:  # decode errors of any kind: the packet came from guest code
            self.init_logs = self._drain_logs()
            raise FunctionInitError(f"Runtime sent an invalid response during init: {exc}",
                                    "Runtime.InvalidResponse") from None
        self.init_logs = self._drain_logs()
        if msg is None:
            raise FunctionInitError("Runtime exited during init", "Runtime.ExitError")
        self.init_ms = float(msg.get("init_ms", 0.0))
        if msg["t"] == "init_error":
            err = FunctionError.from_document(msg.get("error") or {})
            self.init_error = FunctionInitError(err.message, err.error_type, err.stack_trace)
            return
        self.forkable = bool(msg.get("forkable"))
        if self.forkable and self.enforcement is not None:
            # After init, never before: the init phase had the function's memory limit and no
            # more. From here the zygote runs no function code but at-fork hooks its init
            # registered, which the raised limit still bounds.
            self.enforcement.raise_memory_limit(zygote_memory_limit(self.version))
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name=f"zygote-{self.version.key}",
                                        daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ channel

    def _recv(self) -> dict | None:
        """The next packet, or None on EOF. Raises ValueError for a packet that is not a map
        with a string "t": init code runs in the zygote and can write to this socket."""
        data = self.sock.recv(MAX_PACKET)
        if not data:
            return None
        msg = _mpack.unpackb(data)  # ValueError (or another decode error) on malformed bytes
        if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
            raise ValueError("packet is not a map with a string 't' key")
        return msg

    def _read_loop(self) -> None:
        try:
            while True:
                msg = self._recv()
                if msg is None:
                    break
                with self._cond:
                    if msg.get("t") == "exited":
                        self._exits[int(msg["pid"])] = (int(msg["status"]), int(msg.get("maxrss_kb", 0)))
                    elif "seq" in msg:
                        self._replies[int(msg["seq"])] = msg
                    self._cond.notify_all()
        except Exception:  # EOF aside, a broken packet (guest code in the zygote) ends it too
            pass
        with self._cond:
            self.alive = False
            self._cond.notify_all()

    def take_init_logs(self) -> bytes:
        """The init phase's output, once: the first environment forked from this zygote puts
        it in its invocation's log (whether the zygote was built on demand or at deploy)."""
        with self._cond:
            logs, self.init_logs = self.init_logs, b""
        return logs

    def _drain_logs(self) -> bytes:
        os.set_blocking(self._logr, False)
        out = bytearray()
        while True:
            try:
                chunk = os.read(self._logr, 1 << 16)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            out += chunk[: max(0, (1 << 20) - len(out))]
        return bytes(out)

    # ------------------------------------------------------------------ forking

    def fork(self, ctrl_fd: int, log_fd: int) -> int:
        """Fork an environment that uses the given descriptors; returns its namespace pid."""
        with self._lock:
            if not self.alive:
                raise ZygoteDead("zygote is gone")
            self._seq += 1
            seq = self._seq
            try:
                # SCM_RIGHTS duplicates the descriptors into the zygote; ours stay open until
                # the caller closes them after the reply.
                socket.send_fds(self.sock, [_mpack.packb({"t": "fork", "seq": seq})], [ctrl_fd, log_fd])
            except OSError as exc:
                raise ZygoteDead(f"zygote channel: {exc}") from None
            deadline = time.monotonic() + FORK_TIMEOUT_S
            with self._cond:
                while seq not in self._replies:
                    left = deadline - time.monotonic()
                    if not self.alive or left <= 0:
                        raise ZygoteDead("zygote did not answer a fork request")
                    self._cond.wait(left)
                reply = self._replies.pop(seq)
        if reply["t"] != "forked":
            raise InternalError(f"zygote could not fork: {reply.get('error')}")
        return int(reply["pid"])

    def host_pid(self, ns_pid: int) -> int:
        """Map a pid from the zygote's PID namespace to the host's, reading only the zygote's
        own children list (/proc/<pid>/task/<pid>/children), not the whole process table."""
        if self._host_pid is None:
            self._host_pid = _innermost(self.proc.pid).pid
        zpid = self._host_pid
        try:
            with open(f"/proc/{zpid}/task/{zpid}/children") as f:
                children = [int(x) for x in f.read().split()]
        except OSError:
            children = [c.pid for c in psutil.Process(zpid).children()]
        for pid in children:
            try:
                if _ns_pids(pid)[-1] == ns_pid:
                    return pid
            except OSError:
                continue
        raise ZygoteDead(f"forked environment {ns_pid} not found among the zygote's children")

    def wait_exit(self, ns_pid: int, timeout: float) -> tuple[int, int] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while ns_pid not in self._exits:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive:
                    return self._exits.pop(ns_pid, None)
                self._cond.wait(left)
            return self._exits.pop(ns_pid)

    def close(self) -> None:
        """Kill the zygote (its children are separate environments and stay up). Once: the
        threads that all found it dead may all call this, and a second os.close of the log
        pipe could close a descriptor another thread has opened since under the same number."""
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
        self.alive = False
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass
        if self._logr is not None:
            os.close(self._logr)
            self._logr = None
        if self._gate is not None:  # still held: the zygote is dead already (killed above)
            self._gate.close()
            self._gate = None
        if self.enforcement is not None:
            self.enforcement.release()
            self.enforcement = None
        import shutil

        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def _ns_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return [pid]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _innermost(pid: int) -> psutil.Process:
    """The zygote's own process: `pid` itself, or the interpreter under a bwrap wrapper."""
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        # bwrap's own argv ends with the zygote's too; the zygote is the first
        # process of the chain that is not the wrapper. Matched by file name: inside the
        # sandbox the script may be bound at another path (namespaces.RELOCATED).
        if cmd and os.path.basename(cmd[-1]) == os.path.basename(ZYGOTE) \
                and not namespaces.is_wrapper(cmd):
            return p
    return proc


class ForkedProcess:
    """The subset of subprocess.Popen that ProcessEnvironment uses, for a forked environment."""

    def __init__(self, zygote: Zygote, ns_pid: int) -> None:
        self.zygote = zygote
        self.ns_pid = ns_pid
        self.pid = zygote.host_pid(ns_pid)
        self.returncode: int | None = None
        self.maxrss_kb = 0

    def poll(self) -> int | None:
        return self._wait(0)

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        rc = self._wait(timeout if timeout is not None else 3600)
        if rc is None:
            raise subprocess.TimeoutExpired("forked environment", timeout)
        return rc

    def _wait(self, timeout: float) -> int | None:
        start = time.monotonic()
        deadline = start + timeout
        while self.returncode is None:
            got = self.zygote.wait_exit(self.ns_pid, max(0.0, min(0.05, deadline - time.monotonic())))
            now = time.monotonic()
            if got is not None:
                self.returncode, self.maxrss_kb = got
            elif (not self.zygote.alive or now - start >= REPORT_GRACE_S) and _gone(self.pid):
                # Dead but never reported: the zygote died, or cannot reap (stopped: a guest
                # of the version may SIGSTOP it). Status unknown. Checked only in waits that
                # last, not in poll(): the /proc read is not free, and pools poll every idle
                # environment every second.
                self.returncode = -9
            elif now >= deadline:
                return None
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass
