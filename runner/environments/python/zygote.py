"""Python environments forked from a per-version zygote (the Python snapshot pool).

A `Zygote` (zygote_process.py) is one process per function version, started inside the
version's sandbox like a plain environment (process/launch.py: limits before its init), that
imports the handler module once and then forks new environments on request
(guest/python_zygote.py). A forked environment skips interpreter start-up and the init phase:
its cold start is a fork plus one handshake.

`ZygoteEnvironment` is a `ProcessEnvironment` whose process comes from the zygote instead of
subprocess, with a `GuestChannel` of its own like any environment: everything after the
child's hello (limits, invoke, timeout, log capture, death classification) is the same code
path. What differs, and why it is safe:

* The host is not the parent of a forked environment; the zygote reaps it (wait4) and reports
  its status, which `ForkedProcess.wait()` waits for. If the zygote itself is gone, the host
  falls back to watching the pid.
* The child reports its pid as seen in its PID namespace; the host maps it to the host pid via
  the NSpid line of /proc/<pid>/status of the zygote's children before applying limits or
  signalling anything.
* Each forked environment enters its own user, mount, PID and IPC namespaces with its own /tmp
  (docs/decisions/068; env_namespaces.py); with RUNNER_ENV_NAMESPACES=off they share the
  zygote's sandbox (mount namespace, /tmp, uid) and isolation between environments of the same
  version is process-level only (docs/decisions/007-python-zygote.md).
* If init started threads, fork would copy a process with locks held by threads that no longer
  exist; the zygote reports `forkable: False` and this backend spawns plain environments for
  that version instead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import psutil

from runner.confinement import namespaces
from runner.environments.base import EnvState
from runner.environments.process import teardown
from runner.environments.process.backend import TEARDOWN_DRAIN_S
from runner.environments.process.channel import GuestChannel
from runner.environments.process.environment import ProcessEnvironment
from runner.environments.process.launch import INIT_TIMEOUT_S
from runner.environments.python.forked import ForkedProcess, innermost
from runner.environments.python.zygote_process import Zygote
from runner.errors import InternalError, ZygoteDead
from runner.model import FunctionVersion

__all__ = ["ForkedProcess", "Zygote", "ZygoteBackend", "ZygoteEnvironment"]

log = logging.getLogger(__name__)


class ZygoteEnvironment(ProcessEnvironment):
    """A ProcessEnvironment whose process is forked by the version's zygote (or spawned, when
    the version's init left the zygote unforkable)."""

    def __init__(self, version, runtime, tmp_root: str, backend: ZygoteBackend) -> None:
        super().__init__(version, runtime, tmp_root)
        self.backend = backend
        self.zygote: Zygote | None = None

    def _spawn(self) -> None:
        try:
            self._spawn_from_zygote()
        except ZygoteDead as first:
            # The zygote died between our check and the fork (OOM-killed, killed by a guest of
            # the same version): build a new one and try once more.
            log.warning("zygote of %s lost (%s); rebuilding", self.version.key, first)
            self.backend.discard(self.version, self.zygote)
            try:
                self._spawn_from_zygote()
            except ZygoteDead as second:
                raise InternalError(f"cannot start an environment for {self.version.name}: "
                                    f"the zygote failed twice ({second})") from None

    def _spawn_from_zygote(self) -> None:
        if self.backend.forgotten(self.version):
            # A straggler of a retired version (an invocation that resolved it just before an
            # update, a spare planned before the delete): a plain environment, no zygote to
            # build for a version nothing will close again.
            return super()._spawn()
        # Held from the hand-out until the fork is counted among its children: the backend's
        # idle reaping never closes a zygote in between (decision 086).
        self.zygote, _ = self.backend.zygote(self.version, hold=True)
        try:
            self._fork_or_spawn()
        finally:
            self.backend.release(self.zygote)

    def _fork_or_spawn(self) -> None:
        assert self.zygote is not None
        if self.zygote.init_error is not None:
            self.init_logs = self.zygote.init_logs
            self.init_duration_ms = self.zygote.init_ms
            raise self.zygote.init_error
        if not self.zygote.forkable:
            return super()._spawn()
        host_sock, guest_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        logr, logw = os.pipe()
        try:
            ns_pid = self.zygote.fork(guest_sock.fileno(), logw)
            self._proc = ForkedProcess(self.zygote, ns_pid)
        except BaseException:
            host_sock.close()
            os.close(logr)
            raise
        finally:
            # The zygote holds its own copies now (SCM_RIGHTS duplicated them), and the child
            # keeps them: ours would keep the log pipe from reaching EOF when the child exits.
            guest_sock.close()
            os.close(logw)
        self._tmp_dir = None  # /tmp is the child's own tmpfs (or the zygote's, switched off)
        self.pid = self._proc.pid
        self._channel = GuestChannel(host_sock, logr)

    def launched_alive(self) -> bool:
        # An environment of a retiring zygote counts as gone: the pool's upkeep and the spare
        # pool destroy it instead of handing it out (see Zygote.retiring).
        zygote = self.zygote
        return super().launched_alive() and not (zygote is not None and zygote.retiring)

    def invoke(self, request):
        outcome = super().invoke(request)
        zygote = self.zygote
        if zygote is not None and zygote.retiring and outcome.reusable:
            # Finished on a retiring zygote: destroyed now rather than put back idle, so the
            # zygote's children drain within the function's timeout and it can close.
            outcome.reusable = False
        return outcome

    def launch(self) -> None:
        """launch(), and for a child forked from the zygote the init handshake too. The child's
        init phase is the zygote's (it inherits the imported handler), so the handshake runs no
        guest code, only after the child's limits are applied, and a pre-started child comes
        out READY: its cold start is the hand-over and the first invocation, one round trip to
        the guest instead of two (measured in docs/decisions/036)."""
        super().launch()
        if self.state is EnvState.NEW and self.zygote is not None and self.zygote.forkable:
            self._init_handshake()

    def start(self) -> None:
        t0 = time.perf_counter()
        super().start()
        # Init Duration is what this cold start waited for: the fork and handshake, plus the
        # zygote's own init when this cold start had to build the zygote (it ran inside).
        self.init_duration_ms = (time.perf_counter() - t0) * 1000.0
        if self.zygote is not None and self.zygote.forkable:
            self.init_logs = self.zygote.take_init_logs() + self.init_logs


class ZygoteBackend:
    """The Python backend with one zygote per version (see the module docstring)."""

    # A fork, its cgroup and handshake: ~5 ms on an idle host (docs/benchmarks.md), so a call
    # waits about that long for a released environment before it starts one (base.py).
    start_wait_s = 0.005
    # A spare is a child forked from the zygote: it inherited the init phase, and launch()
    # did its handshake, so there is no init left to run ahead of demand (base.py).
    spare_init = False

    def __init__(self, runtime, tmp_root: str) -> None:
        self.runtime_impl = runtime
        self.runtime = runtime.name
        self.tmp_root = tmp_root
        self._lock = threading.Lock()
        self._zygotes: dict[str, Zygote] = {}
        self._building: dict[str, threading.Lock] = {}
        self._forgotten: set[str] = set()  # version keys: small strings, one per retired version
        self._closed = False

    def forgotten(self, version: FunctionVersion) -> bool:
        with self._lock:
            return version.key in self._forgotten

    def prepare(self, version: FunctionVersion) -> None:
        self.runtime_impl.check_code(version)

    def create(self, version: FunctionVersion) -> ZygoteEnvironment:
        return ZygoteEnvironment(version, self.runtime_impl, self.tmp_root, self)

    def zygote(self, version: FunctionVersion, hold: bool = False) -> tuple[Zygote, bool]:
        """The version's live zygote, built (init run) if there is none; (zygote, built_now).
        A zygote whose init failed is handed out once and dropped, so the next cold start
        retries the init, as Lambda does. With `hold`, the caller is about to fork from it and
        must call release() after: reap_idle() leaves a held zygote alone."""
        with self._lock:
            build_lock = self._building.setdefault(version.key, threading.Lock())
        with build_lock:
            with self._lock:
                if self._closed:
                    raise InternalError("the Python backend is shut down")
                if version.key in self._forgotten:
                    raise ZygoteDead(f"version {version.key} is retired")
                z = self._zygotes.get(version.key)
                if z is not None:
                    # Under the lock reap_idle() takes: it either reaped z already (then z is
                    # not in the dict) or sees the hold and the fresh use.
                    self._hand_out_locked(z, hold)
            if z is not None and z.alive and z.proc.poll() is None:
                return z, False
            if z is not None:
                if hold:
                    self.release(z)  # not handed out after all: a new one is built below
                # Died (OOM-killed, crashed) or its channel broke: rebuild below. One whose
                # process still runs keeps its PID namespace until its children are done.
                z.retiring = True
                _close_when_idle(z, version.config.timeout_s)
            z = Zygote(version, self.runtime_impl, self.tmp_root)
            with self._lock:
                if self._closed:
                    z.close()
                    raise InternalError("the Python backend is shut down")
                if version.key in self._forgotten:  # retired while this one was built
                    z.close()
                    raise ZygoteDead(f"version {version.key} is retired")
                if z.init_error is None:
                    self._zygotes[version.key] = z
                else:
                    self._zygotes.pop(version.key, None)
                self._hand_out_locked(z, hold)
            if z.init_error is not None:
                z.close()
            return z, True

    def _hand_out_locked(self, z: Zygote, hold: bool) -> None:
        z.last_used = time.monotonic()
        z.holders += hold

    def release(self, z: Zygote) -> None:
        """The hold of zygote(hold=True) is over: the fork is done (its child is counted) or
        did not happen."""
        with self._lock:
            z.holders -= 1

    def reap_idle(self, idle_s: float, now: float | None = None) -> int:
        """Close every zygote that no cold start holds, that was last handed out `idle_s`
        seconds ago or more and that has no forked child left; returns how many (decision 086:
        a zygote is a whole interpreter with the function's init done, several MB, and without
        this one stayed for every version ever invoked). The version's next cold start builds
        it again, init included, and reports that in its Init Duration.

        Why no invocation can lose its environment or its fork to this: the check and the
        removal from `_zygotes` happen under `_lock`, where zygote() also hands out and counts
        its hold, and a fork's child is counted (read loop) before fork() returns and the hold
        ends. So a reaped zygote has no child (nothing lives in its PID namespace, which the
        kill ends) and nothing about to fork; the next zygote() finds none and builds one."""
        now = time.monotonic() if now is None else now
        idle: list[Zygote] = []
        with self._lock:
            if self._closed:
                return 0
            for key, z in list(self._zygotes.items()):
                if z.holders or now - z.last_used < idle_s or (z.alive and z.live_children()):
                    continue
                del self._zygotes[key]
                z.retiring = True
                idle.append(z)
        for z in idle:
            if z.alive:
                z.close()
            else:
                # Its channel broke: the exits of its children went unreported, so wait for
                # them as discard() does (the next cold start would otherwise do this).
                _close_when_idle(z, z.version.config.timeout_s)
        if idle:
            log.info("closed %d zygote(s) idle for %g s or more", len(idle), idle_s)
        return len(idle)

    def prewarm(self, version: FunctionVersion) -> None:
        """Build the version's zygote now (at deploy), so its first cold start is a fork. A
        zygote whose init failed is not kept (zygote() drops it); the invocation retries."""
        if not self.forgotten(version):
            self.zygote(version)

    def discard(self, version: FunctionVersion, zygote: Zygote | None) -> None:
        """Drop `zygote` (if it is still the version's) so the next request builds a new one.
        It is closed once its forked environments are done: one that only stopped answering
        (stalled, not dead) still has healthy invocations in flight, and closing it ends its
        PID namespace and them with it."""
        with self._lock:
            if zygote is not None and self._zygotes.get(version.key) is zygote:
                del self._zygotes[version.key]
        if zygote is not None:
            zygote.retiring = True
            _close_when_idle(zygote, version.config.timeout_s)

    def forget(self, version: FunctionVersion) -> None:
        with self._lock:
            z = self._zygotes.pop(version.key, None)
            self._building.pop(version.key, None)
            self._forgotten.add(version.key)
        if z is not None:
            z.retiring = True
            _close_when_idle(z, version.config.timeout_s)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        # Forked environments destroyed just before (the pool's close) are reaped by their
        # zygote: let their background teardown finish while the zygotes still report exits.
        teardown.drain(TEARDOWN_DRAIN_S)
        for z in zygotes:
            z.close()


# under bwrap, forked environments live in their zygote's PID namespace, which
# the kernel tears down when the zygote exits. A forgotten version's in-flight invocations must
# still finish, so its zygote is closed once it has no forked child left (bounded by the
# function's timeout plus a margin; the pool destroys idle environments of a forgotten version).
def _close_when_idle(z: Zygote, timeout_s: float) -> None:
    def children() -> list[int]:
        try:
            zpid = innermost(z.proc.pid).pid
            with open(f"/proc/{zpid}/task/{zpid}/children") as f:
                return [int(x) for x in f.read().split()]
        except (OSError, psutil.Error, ValueError):
            return []

    if namespaces.mode() == "off" or not children():
        z.close()
        return

    def wait_then_close() -> None:
        deadline = time.monotonic() + timeout_s + INIT_TIMEOUT_S
        while children() and time.monotonic() < deadline:
            time.sleep(0.05)
        z.close()

    threading.Thread(target=wait_then_close, name="zygote-retire", daemon=True).start()
