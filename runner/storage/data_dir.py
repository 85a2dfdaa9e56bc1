"""The data directory's owner (one runner process at a time), and room kept for making room.

Two servers on one data directory both ran the durable event queue: 85 of 100 events ran
twice. Every store here assumes it is the only writer (SQLite's WAL handles concurrent
readers, not two dispatchers leasing the same events), so a runner holds an exclusive lock on
its data directory for its lifetime, and a second one is refused at once, naming the holder.
Several processes will share state through a database built for it, not through one directory.

The lock is flock(2) on `<data_dir>/runner.lock`: the kernel drops it when the holder's last
descriptor closes, including on kill -9, so a crash never leaves a stale lock behind (the pid
written in the file is only for the message). The descriptor is opened O_CLOEXEC, so guests
and helpers the server starts never inherit it (an inherited copy would keep the lock alive
after the server died).
"""

from __future__ import annotations

import errno
import fcntl
import os

from runner.errors import ResourceConflict

LOCK_FILE = "runner.lock"
RESERVE_FILE = "space.reserve"
RESERVE_BYTES = 8 * 1024 * 1024  # enough for SQLite to log a delete of any function (its WAL)


class DataDirLock:
    """Held from construction until close(); see the module docstring."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, LOCK_FILE)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise ResourceConflict(
                f"data directory {data_dir} is in use by another runner ({_holder(self.path)}); "
                "stop it, or start this one with another --data-dir") from None
        # Ours now: record who holds it, for the next one's message.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def close(self) -> None:
        """Release the lock (idempotent). The file stays: removing it would race a newcomer
        that opened it already and would then lock an unlinked inode."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "DataDirLock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "pid unknown"


class SpaceReserve:
    """Space held back on the data directory's file system, for the operations that free space.

    A full data directory refused everything, DeleteFunction included: SQLite must append a
    delete to its log before it can drop anything. The runner keeps RESERVE_BYTES allocated in
    a file (posix_fallocate: real blocks, not a sparse hole); when a delete meets a full disk,
    the reserve is released, the delete retried, and the reserve taken again once there is
    room. Reads (list, get, logs) need no space and work on a full disk anyway.
    """

    def __init__(self, data_dir: str, size: int = RESERVE_BYTES) -> None:
        self.path = os.path.join(data_dir, RESERVE_FILE)
        self.size = size
        self.restore()

    def restore(self) -> bool:
        """Hold the reserve (again); False when there is no room for it now (retried later)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            os.posix_fallocate(fd, 0, self.size)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def release(self) -> bool:
        """Give the reserve's space back to the file system; False if there was none."""
        try:
            os.remove(self.path)
            return True
        except FileNotFoundError:
            return False
