"""Forked environments as the host sees them: pids in the zygote's PID namespace mapped to the
host's, and `ForkedProcess`, the part of subprocess.Popen that ProcessEnvironment uses, for a
child the zygote forked and reaps.

Split from zygote_process.py (the zygote itself: start, init, fork requests, its read loop):
the zygote, not the host, is the parent of these processes, so their exit status arrives as the
zygote's report (Zygote.wait_exit); the host only reads /proc to find and signal them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Protocol

import psutil

from runner.confinement import namespaces
from runner.environments.python.runtime import ZYGOTE


class Zygote(Protocol):
    """What a forked environment needs of its zygote (zygote_process.Zygote), named here
    rather than imported: the zygote module imports this one."""

    alive: bool

    def host_pid(self, ns_pid: int) -> int:
        """The host pid of the child `ns_pid` of the zygote's PID namespace."""

    def wait_exit(self, ns_pid: int, timeout: float) -> tuple[int, int] | None:
        """The child's (status, rusage) once the zygote reported it, or None after `timeout` s."""


# A child that is dead (a zombie) and still unreported this long after a wait began is taken as
# exited: a live zygote reaps and reports within milliseconds, so this only trips when it cannot.
REPORT_GRACE_S = 0.5


def ns_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return [pid]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def innermost(pid: int) -> psutil.Process:
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
            elif (not self.zygote.alive or now - start >= REPORT_GRACE_S) and gone(self.pid):
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
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
