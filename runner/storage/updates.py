"""Updates in progress, per function: Lambda's ResourceConflictException.

An update of a function is more than its registry write: the Runner then prepares and prewarms
the new revision (a Python zygote, a Node spare, provisioned environments), and only when that
is done does the deploy return. Lambda refuses a second update of a function whose last update
is still in progress, instead of queueing it behind the first or interleaving the two; so do
we, per function (other functions update meanwhile) and at once (the caller retries, or reads
the function and decides again). Docs/decisions/046-optimistic-concurrency.md.

Claims live in memory: they describe work this process is doing. A process that dies takes
its in-progress updates with it; the registry write of each either committed or did not.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from runner.errors import ResourceConflict


class UpdateClaims:
    """The names of functions with an update in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: set[str] = set()

    @contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold `name` for the block; ResourceConflict at once if it is already held."""
        with self._lock:
            if name in self._names:
                raise ResourceConflict(
                    f"function {name!r}: an update is in progress; retry once it has finished "
                    "(a deploy or publish returns when its update is done)")
            self._names.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._names.discard(name)

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._names
