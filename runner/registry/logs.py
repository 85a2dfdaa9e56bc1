"""Function logs: one append-only file per function, plus live followers.

Each invocation's log arrives whole (START ... END, REPORT) and is appended in one write, so
concurrent invocations never interleave inside each other's block. Files rotate at
MAX_LOG_FILE_BYTES (one previous generation kept) so a chatty function cannot fill the disk.
Followers (`runner logs --follow`) get every new line through a bounded queue; a follower too
slow to keep up loses lines, never the server's memory.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque

MAX_LOG_FILE_BYTES = 16 * 1024 * 1024
FOLLOWER_QUEUE = 10_000  # lines buffered per follower before it starts losing them


class LogStore:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self._lock = threading.Lock()
        self._followers: dict[str, list[queue.Queue]] = {}

    def _path(self, name: str) -> str:
        return os.path.join(self.root, f"{name}.log")

    def append(self, name: str, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        data = text.encode("utf-8", "replace")
        path = self._path(name)
        with self._lock:
            try:
                if os.path.getsize(path) + len(data) > MAX_LOG_FILE_BYTES:
                    os.replace(path, path + ".1")
            except FileNotFoundError:
                pass
            with open(path, "ab") as f:
                f.write(data)
            followers = list(self._followers.get(name, ()))
        if followers:
            lines = text.splitlines()
            for q in followers:
                for line in lines:
                    try:
                        q.put_nowait(line)
                    except queue.Full:
                        break

    def tail(self, name: str, lines: int = 0) -> list[str]:
        """The last `lines` lines kept for `name` (all kept lines if 0)."""
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

    def delete(self, name: str) -> None:
        with self._lock:
            for path in (self._path(name), self._path(name) + ".1"):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
