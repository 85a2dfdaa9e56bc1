"""Provisioned concurrency in a cluster: a function's provisioned environments are kept on its
home node only (rendezvous.py), where its calls run, so the count holds cluster-wide instead
of being multiplied by the number of nodes.

Every node runs this loop; each provisions the functions whose home it is, every INTERVAL_S
(`pool.provision` brings a version up to its count and is a no-op when it is there). A deploy
through any node, or a home moving when a node dies or joins, is therefore served within
about INTERVAL_S plus the routing view's refresh (1 s). Environments a node provisioned while
it was a function's home stay until the function changes (the pool has no "unprovision");
docs/cluster.md states it.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

log = logging.getLogger(__name__)

INTERVAL_S = 2.0


class Provisioner:
    def __init__(self, functions: Callable[[], Iterable], is_home: Callable[[str], bool],
                 provision: Callable[..., object]) -> None:
        self._functions, self._is_home, self._provision = functions, is_home, provision
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provisioner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def tick(self) -> int:
        """Provision what this node is home for; returns how many versions it looked after."""
        n = 0
        for version in self._functions():
            if version.config.provisioned > 0 and self._is_home(version.name):
                self._provision(version, wait=False)
                n += 1
        return n

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.tick()
            except Exception:
                log.exception("provisioner: tick failed; retrying")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
