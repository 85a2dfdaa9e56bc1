"""The data directory's owner: one runner process at a time.

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
