"""Which engine drives a RUNNING Standard execution (decision 070): the one holding its lease.

On a shared store (PostgreSQL: the nodes of a cluster) every engine resumes from the same
executions, so each execution has a lease (`WorkflowStore.claim`): the engine that starts an
execution takes it, a `LeaseKeeper` renews it every `interval_s` while the execution runs,
and when a node dies its leases lapse after `ttl_s` and the other engines' keepers adopt the
executions (`WorkflowStore.resumable`), resuming each from its persisted cursor as one engine
does after a restart. A transition names its owner, and the store refuses it once another
engine took the lease, so even a node that paused past the ttl cannot drive an execution
alongside its new owner. An execution's end deletes its lease in the same transaction, and
the keeper sweeps leftovers (`WorkflowStore.prune_leases`) every PRUNE_EVERY ticks.

On the SQLite store (one process owns the data directory) every claim of a RUNNING execution
succeeds; the keeper then only re-adopts an execution whose thread ended without recording
its end (a store error), which a restart would have resumed anyway.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

LEASE_S = 10.0  # a dead node's executions are resumed elsewhere this long after its last renewal
RENEW_FRACTION = 5  # renewals per ttl: a lease survives four missed renewals (a slow database)
PRUNE_EVERY = 30  # ticks between sweeps of finished executions' leftover leases (60 s at 10 s)


class LeaseKeeper:
    """One thread per engine. Each tick it renews the lease of every execution the engine
    drives, stops a run whose lease is lost or whose execution ended elsewhere (a
    StopExecution through another node), then, once the engine has started, adopts the
    executions no live lease holds."""

    def __init__(self, engine, ttl_s: float = LEASE_S) -> None:
        if ttl_s <= 0:
            raise ValueError(f"lease_s: {ttl_s!r}; give a positive number of seconds")
        self.engine = engine
        self.ttl_s = ttl_s
        self.interval_s = ttl_s / RENEW_FRACTION
        self.adopting = False  # set by WorkflowEngine.start(): resume others' executions too
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ticks = 0

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="workflow-leases",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the database is away: renew on the next tick
                log.exception("workflow leases: tick failed; retrying")

    def tick(self) -> None:
        engine = self.engine
        for arn, store, stop in engine.driven():
            try:
                held = store.claim(arn, engine.owner, self.ttl_s)
            except Exception:
                log.warning("workflow execution %s: could not renew its lease; retrying", arn)
                continue
            if not held:
                # Another engine took it (we paused past the ttl), or it ended elsewhere: the
                # run stops; its next transition would be refused anyway.
                stop.set()
        if self.adopting and not self._stop.is_set():
            adopted = engine.adopt()
            if adopted:
                log.info("resumed %d workflow executions whose lease had lapsed", adopted)
            # Ends delete their lease (the store's transition); the sweep takes what an end
            # did not: rows from before that, or a node that died between end and release.
            # Every engine sweeps; the DELETE is idempotent, so concurrent sweeps are harmless.
            self._ticks += 1
            if self._ticks % PRUNE_EVERY == 1:
                self.sweep()

    def sweep(self) -> int:
        """Delete the expired leases of executions that ended or are gone; how many."""
        pruned = self.engine.store.prune_leases()
        if pruned:
            log.info("pruned %d leases of finished workflow executions", pruned)
        return pruned

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)
