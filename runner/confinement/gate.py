"""The gate that holds a bwrap sandbox before the runtime's exec until the host has placed it in
its cgroups, and hands bwrap its seccomp filter and its options (decision 039).

Split from namespaces.py (what the sandbox contains and how bwrap is invoked): this module is
the pipes between the host and one sandbox being started. Create gates with
namespaces.new_gate(), which knows whether the sandbox is bwrap's and whether the filter can be
loaded.
"""

from __future__ import annotations

import json
import os
import select
import time

from runner.confinement import seccomp
from runner.errors import InternalError


class Gate:
    """Holds a sandbox before the runtime's exec until the host releases it (bwrap's
    --info-fd and --block-fd), so the host can place it in its cgroups first.

    Why: a process's pages stay charged to the cgroup where they were first touched when the
    process moves (cgroup v2 never moves charges; v1's move_charge_at_immigrate is
    deprecated). Moved after the runtime said hello, the memory of the runtime's own start-up
    stayed charged to the server's group, outside the environment's limit: measured here,
    ~5.5 MB of each node environment and ~6.5 MB of each Python zygote (the rest of their RSS
    is shared file pages). Placed at the gate, everything the runtime touches is its own.

    Use: wrap(..., gate=g) adds the options; pass `g.child_fds` to the child; call `spawned()`
    once it is started, `wait_sandbox()` for the pid of bwrap's child (blocked before it
    forks the command), place the tree, `release()`; `close()` in every case. Safe with a
    multi-threaded server: two pipes made before the spawn, no fork hooks; the pipes are
    O_CLOEXEC here and only the child's copies (pass_fds) are inherited.

    The gate also hands bwrap the seccomp filter (`--seccomp`, a third pipe holding the
    compiled program, read to EOF by bwrap), unless namespaces.seccomp_problem() says why it
    cannot (new_gate() passes that as `filtered`).
    """

    def __init__(self, program: bytes | None = None, *, filtered: bool = True) -> None:
        # `program`: another compiled filter than the guest's (a zygote's, seccomp.py, issue 24).
        # `filtered`: False where the filter cannot be loaded (namespaces.seccomp_problem()).
        self._info_r, self._info_w = os.pipe()
        self._block_r, self._block_w = os.pipe()
        self._filter_r = seccomp.program_fd(program) if filtered else None
        self._options_r: int | None = None

    def carry_options(self, options: list[str]) -> None:
        """Hand bwrap `options` through a pipe (--args) instead of its command line. They are
        a few KiB, under a pipe's 64 KiB buffer, so the write cannot block; an argument
        with a NUL cannot travel this way (nor in argv), and none has one."""
        data = b"".join(os.fsencode(o) + b"\0" for o in options)
        if len(data) >= 65536 or any("\0" in o for o in options):
            raise InternalError(f"bwrap options of {len(data)} bytes cannot go through --args")
        r, w = os.pipe()
        try:
            os.write(w, data)
        finally:
            os.close(w)
        self._options_r = r

    @property
    def child_fds(self) -> tuple[int, ...]:
        fds = (self._info_w, self._block_r, self._filter_r, self._options_r)
        return tuple(fd for fd in fds if fd is not None)

    def args(self) -> list[str]:
        args = ["--info-fd", str(self._info_w), "--block-fd", str(self._block_r)]
        if self._filter_r is not None:
            args += ["--seccomp", str(self._filter_r)]
        if self._options_r is not None:
            args += ["--args", str(self._options_r)]
        return args

    def spawned(self) -> None:
        """Close the child's ends in this process: EOF on the info pipe then means bwrap died."""
        for name in ("_info_w", "_block_r", "_filter_r", "_options_r"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def wait_sandbox(self, timeout_s: float) -> int | None:
        """The host pid of bwrap's child once the sandbox is built and held; None if bwrap
        exited or did not get there within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        data = b""
        info = select.poll()  # poll, not select: the pipe may be above descriptor 1,024
        info.register(self._info_r, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not info.poll(left * 1000):
                return None
            chunk = os.read(self._info_r, 4096)
            if not chunk:
                return None
            data += chunk
            try:
                return int(json.loads(data)["child-pid"])
            except ValueError:
                continue  # not the whole document yet
            except (KeyError, TypeError):
                return None

    def release(self) -> None:
        """Let the sandbox exec the runtime (bwrap reads one byte from the block pipe)."""
        if self._block_w is not None:
            os.write(self._block_w, b"1")
            os.close(self._block_w)
            self._block_w = None

    def close(self) -> None:
        """Close whatever is left (closing the block pipe unblocks bwrap too: it reads EOF)."""
        self.spawned()
        for name in ("_info_r", "_block_w"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
