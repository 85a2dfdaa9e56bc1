"""A version's zygote process as the host sees it: start, init, fork, reap (zygote.py uses it).

`Zygote` starts guest/python_zygote.py inside the version's sandbox the way a plain environment
starts (process/launch.py: spawn, place_at_gate, await_hello, run_init: limits before its
init), runs the init phase once and then forks environments on request over a SOCK_SEQPACKET
control socket, passing each child its channel and log descriptors (SCM_RIGHTS). The zygote
reaps its children and reports each exit status and rusage, which `ForkedProcess` (forked.py:
the part of subprocess.Popen that ProcessEnvironment uses) waits for. Messages are msgpack maps on both
sides: the host codes them with process/frames.py, the zygote with its stdlib codec.

Guarantees: every method of `Zygote` is thread-safe; a zygote that exits or stops answering
raises `ZygoteDead` from `fork`, and the caller builds a new one; pids the zygote reports are in
its PID namespace and are mapped to host pids (NSpid) before anything is signalled.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

import psutil

from runner import settings
from runner.confinement import ksm, limits
from runner.environments.process.frames import decode, encode_packet
from runner.environments.process.lambda_env import guest_environment
from runner.environments.process.launch import await_hello, place_at_gate, run_init, spawn
from runner.environments.python import env_namespaces
from runner.environments.python.forked import innermost, ns_pids
from runner.errors import (
    FunctionError,
    FunctionTimeout,
    InternalError,
    RuntimeExited,
    ZygoteDead,
)
from runner.model import MB, FunctionVersion

log = logging.getLogger(__name__)

FORK_TIMEOUT_S = 10.0  # unanswered this long: the zygote is wedged (generous: CI is shared)
ZYGOTE_CPU = 1.0  # of one CPU, once init is done: the fork loop never waits for its quota
MAX_PACKET = 1 << 16

# Memory a live forked environment leaves charged to the zygote's cgroup. A page is charged to
# the group of the process that first touched it; after a fork, every page the zygote writes
# again (its fork loop's objects, its stack, malloc state) is copied for the zygote, and the
# original stays with the child, still charged to the zygote's group, until that child exits.
# The fork's page-table copy is charged there too. Measured per live child: 1.5 MB for a
# 10 MB zygote, 1.8 MB for a 147 MB one (page tables: ~1/512 of the zygote's memory). Without
# room for it, the zygote of a 128 MB function was OOM-killed at ~77 live environments, and
# its PID namespace took every environment of the version with it.
CHILD_CHARGE_BYTES = 2 * MB  # the fixed part, rounded up from 1.5 MB
CHILD_CHARGE_SHARE = 256  # plus memory / 256: twice the page tables of a zygote at its limit
# Children beyond the version's concurrency that may be alive at once: pre-started spares
# (pool/prestart.MAX_PER_VERSION; this layer does not import the pool) and environments being
# destroyed while their replacements start (their reap is in the background: teardown.py).
SPARE_CHILDREN = 16  # 8 spares + 8 being torn down


def zygote_memory_limit(version: FunctionVersion) -> int:
    """The zygote's memory limit once its init is done: the function's memory (init ran under
    exactly that) plus room for what its live children leave charged to its group. Bounded by
    the concurrency the function asked for; the zygote itself runs only the fork loop by then."""
    memory = version.config.memory_mb * MB
    children = version.config.concurrency + SPARE_CHILDREN
    return memory + children * (CHILD_CHARGE_BYTES + memory // CHILD_CHARGE_SHARE)


class Zygote:
    """The host's handle on one version's zygote process. Thread-safe."""

    def __init__(self, version: FunctionVersion, runtime, tmp_root: str) -> None:
        self.version = version
        self.tmp_dir = tempfile.mkdtemp(prefix=f"zygote-{version.name}-", dir=tmp_root)
        self._close_lock = threading.Lock()
        self._closing = False
        self._lock = threading.Lock()  # one request sent at a time (seq order = send order)
        self._cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._exits: dict[int, tuple[int, int]] = {}  # ns pid -> (status, maxrss_kb)
        self._seq = 0
        self.alive = True
        # Set by the backend when it replaces this zygote (discard, forget): its forked
        # environments then take no further invocation (ZygoteEnvironment), so that the
        # zygote can close once the invocations in flight are done. Closing it ends its PID
        # namespace, and every environment in it, idle or busy.
        self.retiring = False
        # For the backend's idle reaping (decision 086): the ns pids of forked children the
        # zygote has not reported as exited yet (the read loop keeps it, under _cond), the
        # cold starts holding this zygote between their hand-out and their fork, and when one
        # was last handed out (both under the backend's lock, which reaps only at 0 holders).
        self._children: set[int] = set()
        self.holders = 0
        self.last_used = time.monotonic()
        self.forkable = False
        self.init_ms = 0.0
        self.init_logs = b""
        self.init_error: FunctionError | None = None
        self.enforcement: limits.Enforcement | None = None
        self._reader: threading.Thread | None = None
        self._host_pid: int | None = None
        self._depth: int | None = None  # the zygote's level in its NSpid line
        self._known: dict[int, int] = {}  # host pid -> ns pid of children already read
        # Per-environment namespaces (issue 24, env_namespaces.py): the zygote's filter lets a
        # clone with the cookie make namespaces; the cookie reaches it only after its init.
        self._ns_plan = env_namespaces.plan()
        self.env_namespaces = False  # True once the zygote's probe child worked
        # Held before the interpreter starts and placed in the version's cgroups first, as a
        # plain environment is (launch.place_at_gate): the zygote's start-up is then charged
        # to its own group, and its forked children's shared pages with it. Same spawn path as
        # a plain environment; the control socket is SOCK_SEQPACKET (one message per packet,
        # file descriptors ride along with a fork request).
        env = guest_environment(version, self.tmp_dir, runtime.environment(version))
        if settings.current().ksm:
            # The zygote marks itself mergeable before its init (confinement/ksm.py): its
            # forked environments inherit the mark.
            env[ksm.GUEST_FLAG] = "1"
        try:
            started = spawn(runtime.zygote_command(version), version, self.tmp_dir, env,
                            address_space=runtime.address_space_limit,
                            what=f"the {runtime.name} zygote", packets=True,
                            seccomp_program=self._ns_plan.zygote_filter if self._ns_plan else None)
        except BaseException:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            raise
        self.proc = started.proc
        self.channel = started.channel
        self._gate = started.gate
        try:
            self._initialise(runtime)
            if self.forkable and self._ns_plan is not None:
                self._enter_namespaces(runtime)
        except BaseException:
            self.close()  # kills the zygote, then closes a gate still held
            raise

    def _initialise(self, runtime) -> None:
        """The start-up handshake of launch.py, as a plain environment runs it; then the fork
        loop's reader. A failed init is kept in `init_error` (with its logs), not raised: the
        backend hands it to one cold start, which reports it as Lambda does."""
        spec = limits.LimitSpec.for_version(self.version, address_space=runtime.address_space_limit)
        if self._gate is not None:
            try:
                self.enforcement = place_at_gate(self._gate, self.proc, spec)
            except RuntimeExited as exc:
                raise ZygoteDead(exc.message) from None  # close() kills it, then closes the gate
            self._gate.close()
            self._gate = None
        try:
            self.enforcement = await_hello(self.channel, self.proc, spec, self.enforcement)
        except RuntimeExited:
            raise ZygoteDead(f"zygote exited before its hello (status {self.proc.poll()})") from None
        reply = run_init(self.channel, self.version, self.enforcement)
        self.init_logs = reply.logs
        if not reply.answered:
            # No death classification here (a plain environment's): a zygote that exits in
            # its init is reported as an exit, one that outlives it as a timeout.
            self.init_error = (FunctionTimeout.after(reply.timeout_s) if reply.timed_out
                               else RuntimeExited("Runtime exited during init"))
            return
        if reply.message is not None:
            self.init_ms = float(reply.message.get("init_ms", 0.0))
        self.init_error = reply.error()
        if self.init_error is not None:
            return
        self.forkable = bool(reply.message.get("forkable"))
        if self.forkable and self.enforcement is not None:
            # After init, never before: the init phase had the function's memory limit and no
            # more. From here the zygote runs no function code but at-fork hooks its init
            # registered, which the raised limit still bounds.
            self.enforcement.raise_memory_limit(zygote_memory_limit(self.version))
            # And a whole CPU, no more: every cold start of the version waits for the fork
            # loop, which the function's own share (7% at 128 MB) throttled under load
            # (limits.Enforcement.widen_cpu says why this is safe).
            self.enforcement.widen_cpu(ZYGOTE_CPU)
        # From here one thread reads the control socket (the replies to fork requests and the
        # exits of children), blocking: the channel's poll loop was for the handshake only.
        self.channel.sock.setblocking(True)
        self._reader = threading.Thread(target=self._read_loop, name=f"zygote-{self.version.key}",
                                        daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ channel

    def _read_loop(self) -> None:
        sock = self.channel.sock
        try:
            while True:
                data = sock.recv(MAX_PACKET)
                if not data:
                    break
                # ProtocolError for a packet that is not a map with a string "t": init code
                # ran in the zygote and could write to this socket.
                msg = decode(data)
                with self._cond:
                    if msg.get("t") == "exited":
                        self._exits[int(msg["pid"])] = (int(msg["status"]), int(msg.get("maxrss_kb", 0)))
                        # The zygote reports an exit as it reaps, before any later fork can
                        # reuse the pids: drop the mapping now, so host_pid never matches it.
                        gone = int(msg["pid"])
                        for host, ns in list(self._known.items()):
                            if ns == gone:
                                self._known.pop(host, None)
                        self._children.discard(gone)
                    elif "seq" in msg:
                        if msg.get("t") == "forked":
                            # Counted here, before the reply reaches fork()'s caller, so that
                            # a child's exit can never be read before its fork is counted.
                            self._children.add(int(msg["pid"]))
                        self._replies[int(msg["seq"])] = msg
                    self._cond.notify_all()
        except Exception:  # EOF aside, a broken packet (guest code in the zygote) ends it too
            pass
        with self._cond:
            self.alive = False
            self._cond.notify_all()

    def live_children(self) -> int:
        """Forked children not yet reported as exited (environments idle, busy or spare, and
        ones being torn down). Children the init phase started itself are not counted."""
        with self._cond:
            return len(self._children)

    def take_init_logs(self) -> bytes:
        """The init phase's output, once: the first environment forked from this zygote puts
        it in its invocation's log (whether the zygote was built on demand or at deploy)."""
        with self._cond:
            logs, self.init_logs = self.init_logs, b""
        return logs

    # ------------------------------------------------------------------ forking

    def _enter_namespaces(self, runtime) -> None:
        """Hand the zygote the cookie and the guest filter; its probe child says whether
        per-environment namespaces work here. If not, environments share the zygote's
        namespaces (decision 007) and the reason is logged."""
        assert self._ns_plan is not None
        reply = self._request(lambda seq: self._ns_plan.message(
            self.version, seq, runtime.address_space_limit), [])
        self.env_namespaces = reply["t"] == "ns_ready"
        if not self.env_namespaces:
            log.warning("environments of %s share their zygote's /tmp, PID and IPC namespaces: %s",
                        self.version.key, reply.get("error"))

    def _request(self, make, fds: list[int]) -> dict:
        """Send make(seq) with `fds` and wait for the zygote's reply carrying that seq.

        Requests are pipelined (issue 24): the lock covers the send only, so in a burst the
        zygote finds the next fork request queued as soon as it has answered one, instead of
        idling a round trip per fork while the host's thread wakes up and sends it. The zygote
        still forks one at a time; replies are matched by seq."""
        with self._lock:
            if not self.alive:
                raise ZygoteDead("zygote is gone")
            self._seq += 1
            seq = self._seq
            try:
                # SCM_RIGHTS duplicates the descriptors into the zygote; ours stay open until
                # the caller closes them after the reply.
                socket.send_fds(self.channel.sock, [encode_packet(make(seq))], fds)
            except OSError as exc:
                raise ZygoteDead(f"zygote channel: {exc}") from None
        deadline = time.monotonic() + FORK_TIMEOUT_S
        with self._cond:
            while seq not in self._replies:
                left = deadline - time.monotonic()
                if not self.alive or left <= 0:
                    raise ZygoteDead("zygote did not answer a fork request")
                self._cond.wait(left)
            return self._replies.pop(seq)

    def fork(self, ctrl_fd: int, log_fd: int) -> int:
        """Fork an environment that uses the given descriptors; returns its pid in the
        zygote's PID namespace."""
        reply = self._request(lambda seq: {"t": "fork", "seq": seq}, [ctrl_fd, log_fd])
        if reply["t"] != "forked":
            raise InternalError(f"zygote could not fork: {reply.get('error')}")
        return int(reply["pid"])

    def host_pid(self, ns_pid: int) -> int:
        """Map a pid from the zygote's PID namespace to the host's, reading only the zygote's
        own children list (/proc/<pid>/task/<pid>/children), not the whole process table."""
        if self._host_pid is None:
            self._host_pid = innermost(self.proc.pid).pid
        zpid = self._host_pid
        if self._depth is None:
            # The zygote's own level: a child cloned into its own PID namespace has one level
            # more (where it is 1), so the zygote's numbering is not the innermost one then.
            self._depth = len(ns_pids(zpid)) - 1
        try:
            with open(f"/proc/{zpid}/task/{zpid}/children") as f:
                children = [int(x) for x in f.read().split()]
        except OSError:
            children = [c.pid for c in psutil.Process(zpid).children()]
        # Children already mapped are skipped (issue 24): in a burst of N forks, reading every
        # child's status for every fork cost N^2/2 /proc reads (5,000 for 100), on the cold
        # start's critical path. An entry lives while its child does: the read loop drops it
        # when the zygote reports the exit, which it does before any later fork can reuse
        # either pid.
        known = self._known
        for pid in children:
            seen = known.get(pid)
            if seen is not None:
                if seen == ns_pid:
                    return pid
                continue
            try:
                levels = ns_pids(pid)
            except OSError:
                continue
            if len(levels) > self._depth:
                known[pid] = levels[self._depth]
                if levels[self._depth] == ns_pid:
                    return pid
        # Not found among unread children: entries of exited children may be stale (a reused
        # host pid). Forget them all and read once more before giving up.
        if known:
            known.clear()
            return self.host_pid(ns_pid)
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
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        # After the kill, as a plain environment closes its channel: the read loop ends on the
        # socket's EOF (or on the closed socket, whichever it meets first).
        self.channel.close()
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass
        if self._gate is not None:  # still held: the zygote is dead already (killed above)
            self._gate.close()
            self._gate = None
        if self.enforcement is not None:
            self.enforcement.release()
            self.enforcement = None
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
