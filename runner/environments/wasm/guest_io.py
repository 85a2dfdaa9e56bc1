"""Files a wasm guest's stdio goes through, and the host's reading of them.

Why files: wasmtime's Python API has no in-memory stdin and its `stdout_custom` callback costs
~0.5-0.8 ms per invocation (a Python call per write plus the callback machinery), while a WASI
config pointed at files under /dev/shm (RAM) costs ~0.1 ms. See
docs/decisions/025-wasm-stdio-files.md.

Layout of one environment: `<io_dir>/stdin|stdout|stderr` under /dev/shm, and `tmp_dir` on the
work disk, preopened as the guest's /tmp. The host keeps its own descriptor on each file (same
inode: wasmtime reopens them with O_TRUNC for each command instance, which keeps the inode).
"""

from __future__ import annotations

import json
import os

from runner.environments.wasm.ticker import Watched, punch_hole

MAX_LOG_BYTES = 1024 * 1024  # per invocation, as for the subprocess runtimes
TRUNCATED = b"\n[runner] log truncated: output over 1 MiB per invocation dropped\n"


class GuestIO:
    def __init__(self, io_dir: str, tmp_dir: str) -> None:
        self.io_dir = io_dir
        self.tmp_dir = tmp_dir
        self.stdin_path = os.path.join(io_dir, "stdin")
        self.stdout_path = os.path.join(io_dir, "stdout")
        self.stderr_path = os.path.join(io_dir, "stderr")
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self.stdin_fd = os.open(self.stdin_path, flags, 0o600)
        self.stdout_fd = os.open(self.stdout_path, flags, 0o600)
        self.stderr_fd = os.open(self.stderr_path, flags, 0o600)

    def set_stdin(self, data: bytes) -> None:
        os.ftruncate(self.stdin_fd, 0)
        view = memoryview(data)
        offset = 0
        while offset < len(view):
            offset += os.pwrite(self.stdin_fd, view[offset:], offset)

    def read(self, fd: int, start: int, end: int) -> bytes:
        out = bytearray()
        while start + len(out) < end:
            chunk = os.pread(fd, min(1 << 20, end - start - len(out)), start + len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def close(self) -> None:
        for fd in (self.stdin_fd, self.stdout_fd, self.stderr_fd):
            if fd >= 0:
                os.close(fd)
        self.stdin_fd = self.stdout_fd = self.stderr_fd = -1


class OutputWindow:
    """What one guest call wrote to one file: bytes [start, end of call), bounded by `limit`.

    For a command instance start is 0 (the file was just truncated); for a reactor it is where
    the previous call left off. The ticker's guard holds the file at start+limit meanwhile."""

    def __init__(self, io: GuestIO, fd: int, start: int, limit: int) -> None:
        self.io = io
        self.fd = fd
        self.start = start
        self.end = start  # the file's size when collected: where the next call's window starts
        self.watch = Watched(fd, start + limit)

    def collect(self, *, free: bool) -> tuple[bytes, bool]:
        """(bytes written, overflowed). `free` punches the consumed range out of the file."""
        end = self.io.size(self.fd)
        if end > self.watch.limit:
            # Written since the ticker's last check: cut back as its check would have (the
            # ticker no longer checks at the call's end; this is the one place that does).
            os.ftruncate(self.fd, self.watch.limit)
            self.watch.overflowed = True
            end = self.watch.limit
        self.end = end
        data = self.io.read(self.fd, self.start, min(end, self.watch.limit))
        overflowed = self.watch.overflowed or end > self.watch.limit
        if free and end > self.start:  # [0, start) is already a hole: nothing new, no syscall
            punch_hole(self.fd, end)
        return data, overflowed


def output_payload(stdout: bytes) -> bytes:
    """The response of a command: its stdout if that is JSON, else stdout as a JSON string
    (decoded as UTF-8 with replacement), so a plain `print("hi")` works. Empty stdout is null."""
    if not stdout.strip():
        return b"null"
    try:
        json.loads(stdout)
        return stdout.strip()
    except ValueError:
        return json.dumps(stdout.decode("utf-8", "replace")).encode()


def bounded_log(data: bytes, overflowed: bool) -> bytes:
    if overflowed or len(data) > MAX_LOG_BYTES:
        return data[:MAX_LOG_BYTES] + TRUNCATED
    return data
