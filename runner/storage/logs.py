"""Function logs: one append-only file per function, plus live followers.

Each invocation's log arrives whole (START ... END, REPORT) and is appended in one write, so
concurrent invocations never interleave inside each other's block. Files rotate at
MAX_LOG_FILE_BYTES (one previous generation kept), and all functions' logs together stay under
a global budget: past it, whole files are removed oldest first (by last write), never the file
being written. One chatty function used to fill a 20 MB data directory in 22 calls, after
which even deletes failed.
Followers (`runner logs --follow`) get every new line through a bounded queue; a follower too
slow to keep up loses lines, never the server's memory.

A block may be promised before it is written (`reserve`, then `append(..., reserved=True)`):
an invocation's PendingLog (invocation/log_block.py), which the gRPC edge writes after the
response is on the wire. Reads of a
function's log wait for its promised blocks (up to PENDING_WAIT_S), so a caller that reads
the log after getting the response always finds the invocation in it.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections import deque

MAX_LOG_FILE_BYTES = 16 * 1024 * 1024
# All logs together: at most this, and at most a quarter of the data directory's file system
# (code, the registry and the event queue need the rest).
MAX_LOG_BUDGET_BYTES = 1024 * 1024 * 1024
BUDGET_SHARE_OF_DISK = 0.25
# Past the budget, files go until the total is this share of it: removal is rare, not one file
# per block once the budget is reached.
SHRINK_TO = 0.9
MIN_FILE_BYTES = 64 * 1024  # the rotation size never goes below this, however small the budget
FOLLOWER_QUEUE = 10_000  # lines buffered per follower before it starts losing them
MAX_OPEN_FILES = 256  # log files kept open at once (each costs one descriptor)
# How long a read waits for promised blocks. They are written microseconds after a response
# is sent; the bound only matters if the writer died with the promise unkept.
PENDING_WAIT_S = 2.0


def default_budget(root: str) -> int:
    """MAX_LOG_BUDGET_BYTES, or a quarter of the file system holding `root` if that is less."""
    st = os.statvfs(root)
    return min(MAX_LOG_BUDGET_BYTES, int(st.f_blocks * st.f_frsize * BUDGET_SHARE_OF_DISK))


class LogStore:
    def __init__(self, root: str, budget_bytes: int | None = None) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.budget = budget_bytes if budget_bytes is not None else default_budget(root)
        # A function's file rotates at most at a quarter of the budget, so the file being
        # written (never removed) cannot hold the whole budget by itself.
        self.file_bytes = max(MIN_FILE_BYTES, min(MAX_LOG_FILE_BYTES, self.budget // 4))
        self._total = sum(os.path.getsize(p) for p in self._log_files())
        # Order of last writes in this process (path -> a counter): what "oldest" means for
        # files written since start (mtimes tie within a clock tick); older files sort first.
        self._last_write: dict[str, int] = {}
        self._writes = itertools.count()
        # Identities of deleted functions (model.FunctionVersion.function_uid): a block of one
        # of them still in flight is dropped, never written into the log of a new function of
        # the same name. In memory: after a restart no such block can be in flight.
        self._deleted_owners: set[str] = set()
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)  # notified when promises are kept
        self._waiting = 0  # threads in _written.wait_for: a kept promise notifies only these
        self._paths: dict[str, str] = {}  # name -> its log's path (joined once)
        self._pending: dict[str, int] = {}  # promised, not yet written blocks per function
        self._closed = False
        self._followers: dict[str, list[queue.Queue]] = {}
        # Open append handles and their sizes: one open() per function, not per invocation
        # (the log append is on the invoke path). Bounded: the least recently written handles
        # are closed past MAX_OPEN_FILES.
        self._files: dict[str, tuple[object, int]] = {}

    def _path(self, name: str) -> str:
        path = self._paths.get(name)
        if path is None:
            path = os.path.join(self.root, f"{name}.log")
            if len(self._paths) < MAX_OPEN_FILES:  # bounded: names come from deployed functions
                self._paths[name] = path
        return path

    def reserve(self, name: str) -> None:
        """Promise one block for `name`, written later by append(name, ..., reserved=True)."""
        with self._lock:
            self._pending[name] = self._pending.get(name, 0) + 1

    def append(self, name: str, text: str, reserved: bool = False, owner: str = "") -> None:
        """Write one invocation's block; `reserved` keeps a promise made by reserve(), even
        when the write fails (the error still propagates). `owner` is the identity of the
        function the block belongs to: a deleted function's block is dropped (delete())."""
        try:
            if owner and owner in self._deleted_owners:
                return
            if not text:  # a JSON-format block whose every record its levels filtered out
                return
            self._append(name, text)
        finally:
            if reserved:
                with self._lock:
                    left = self._pending.get(name, 0) - 1
                    if left > 0:
                        self._pending[name] = left
                    else:
                        self._pending.pop(name, None)
                        if self._waiting:
                            self._written.notify_all()

    def _wait_for_promised(self, name: str) -> None:
        with self._lock:
            self._waiting += 1
            try:
                self._written.wait_for(lambda: name not in self._pending, PENDING_WAIT_S)
            finally:
                self._waiting -= 1

    def _append(self, name: str, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        data = text.encode("utf-8", "replace")
        with self._lock:
            f, size = self._handle(name)
            if size + len(data) > self.file_bytes:
                f.close()
                del self._files[name]
                self._total -= _size(self._path(name) + ".1")  # the generation replaced
                os.replace(self._path(name), self._path(name) + ".1")
                self._last_write[self._path(name) + ".1"] = self._last_write.get(self._path(name), -1)
                f, size = self._handle(name)
            # One write per invocation block, unbuffered: concurrent blocks never interleave and
            # a reader (tail, follow) sees whole blocks. A short write (the disk filling up) is
            # continued; if the rest fails, the part written is cut off again, so the file
            # never holds half a block (a reader would see output without END or REPORT).
            try:
                done = f.write(data)
                while done < len(data):
                    done += f.write(data[done:])
            except OSError:
                f.truncate(size)
                raise
            self._files[name] = (f, size + len(data))
            self._total += len(data)
            self._last_write[self._path(name)] = next(self._writes)
            if self._total > self.budget:
                self._shrink(keep=self._path(name))
            if self._closed:  # a promise kept after close(): write, but keep nothing open
                self._files.pop(name)[0].close()
            followers = list(self._followers.get(name, ()))
        if followers:
            lines = text.splitlines()
            for q in followers:
                for line in lines:
                    try:
                        q.put_nowait(line)
                    except queue.Full:
                        break

    def _log_files(self) -> list[str]:
        return [os.path.join(self.root, e) for e in os.listdir(self.root)
                if e.endswith(".log") or e.endswith(".log.1")]

    def _shrink(self, keep: str) -> None:
        """Remove whole log files, least recently written first, until the total is under
        SHRINK_TO of the budget; `keep` (the file just written) stays. Called with the lock."""
        aged = []
        for path in self._log_files():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if path != keep:
                aged.append((self._last_write.get(path, -1), st.st_mtime, path, st.st_size))
        for _, _, path, size in sorted(aged):
            if self._total <= self.budget * SHRINK_TO:
                return
            name = os.path.basename(path).removesuffix(".1").removesuffix(".log")
            entry = self._files.get(name)
            if entry is not None and path == self._path(name):  # its open append handle
                self._files.pop(name)[0].close()
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            self._last_write.pop(path, None)
            self._total -= size

    def _handle(self, name: str):
        entry = self._files.pop(name, None)
        if entry is None:
            if len(self._files) >= MAX_OPEN_FILES:
                oldest = next(iter(self._files))
                self._files.pop(oldest)[0].close()
            f = open(self._path(name), "ab", buffering=0)
            entry = (f, f.seek(0, os.SEEK_END))
        self._files[name] = entry  # re-inserted last: dict order is least recently used first
        return entry

    def close(self) -> None:
        """Close the files, after the promised blocks are written (at most PENDING_WAIT_S)."""
        with self._lock:
            self._waiting += 1
            try:
                self._written.wait_for(lambda: not self._pending, PENDING_WAIT_S)
            finally:
                self._waiting -= 1
            self._closed = True
            for f, _ in self._files.values():
                f.close()
            self._files.clear()

    def tail(self, name: str, lines: int = 0) -> list[str]:
        """The last `lines` lines kept for `name` (all kept lines if 0)."""
        self._wait_for_promised(name)
        out: deque[str] = deque(maxlen=lines or None)
        for path in (self._path(name) + ".1", self._path(name)):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        out.append(line.rstrip("\n"))
            except FileNotFoundError:
                continue
        return list(out)

    def follow(self, name: str) -> "queue.Queue[str]":
        q: queue.Queue[str] = queue.Queue(maxsize=FOLLOWER_QUEUE)
        with self._lock:
            self._followers.setdefault(name, []).append(q)
        return q

    def unfollow(self, name: str, q: "queue.Queue[str]") -> None:
        with self._lock:
            qs = self._followers.get(name, [])
            if q in qs:
                qs.remove(q)

    def delete(self, name: str, owner: str = "") -> None:
        """Remove `name`'s log; `owner` (the deleted function's identity) makes blocks of it
        still in flight be dropped instead of starting the log of a new function."""
        with self._lock:
            if owner:
                self._deleted_owners.add(owner)
            entry = self._files.pop(name, None)
            if entry is not None:
                entry[0].close()
            for path in (self._path(name), self._path(name) + ".1"):
                self._total -= _size(path)
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0
