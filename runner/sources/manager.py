"""`EventSources`: create, read, update and delete mappings, and keep one poller running per
enabled mapping, over one Runner.

The store is the truth; a supervisor thread reconciles the running pollers with it whenever
the store's version changes (and at least every RECONCILE_S): a created or enabled mapping
starts polling, a disabled or deleted one stops (after the invocation in flight; its
unfinished batch stays on the broker), an updated one restarts with its new settings. So
changes take effect without a restart of the server, whichever edge made them.

A deleted function: its mappings stay, disabled (State "Disabled", StateTransitionReason says
why) by the supervisor within RECONCILE_S, or at once by a poller whose invocation found the
function gone; enabling one again after the function is deployed resumes from the stored
position (docs/decisions/052-mapping-edges-and-deletes.md).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from runner.errors import ResourceNotFound, SourceUnavailable
from runner.invocation.runner import Runner
from runner.sources.base import Source
from runner.sources.poller import Poller
from runner.sources.registry import make_source
from runner.storage.mapping_model import Mapping
from runner.storage.mappings import MappingStore, SQLiteMappingStore

log = logging.getLogger(__name__)

RECONCILE_S = 1.0
_STATE_FIELDS = ("state", "state_reason", "last_result", "last_modified", "created_at")


def _config(m: Mapping) -> dict[str, Any]:
    row = m.to_row()
    for f in _STATE_FIELDS:
        row.pop(f)
    return row


class EventSources:
    def __init__(self, runner: Runner, store: MappingStore | None = None, *,
                 source_factory: Callable[[Mapping, MappingStore], Source] = make_source,
                 may_poll: Callable[[str], bool] | None = None) -> None:
        """`may_poll(uuid)`: in a cluster, whether this node holds the mapping's lease (taken
        or renewed by the call; docs/cluster.md); then the reconcile runs every RECONCILE_S to
        renew it, and a poller whose lease is lost stops. None: one node polls everything."""
        self.runner = runner
        self._may_poll = may_poll
        self.store = store if store is not None else SQLiteMappingStore(runner.data_dir)
        self._factory = source_factory
        self._pollers: dict[str, tuple[dict, Poller]] = {}
        self._states: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ management

    def create(self, **settings: Any) -> Mapping:
        """A new mapping (Mapping.create's settings). The function must exist (ResourceNotFound);
        bad settings raise InvalidParameter naming the field."""
        m = Mapping.create(**settings)
        self.runner.get(m.function, m.qualifier or None)
        m = Mapping.create(**{**m.to_row(), "state": "Enabled" if m.enabled else "Disabled",
                              "state_reason": "USER_INITIATED"})
        self.store.create(m)
        self._prepare(m)
        self._wake.set()
        return m

    def _prepare(self, m: Mapping) -> None:
        """Connect once at creation, best effort: what the mapping needs on the broker (the
        consumer group, the durable consumer, PostgreSQL's capture trigger) then exists when
        create() returns, so records written right after are not missed while the poller
        starts. An unreachable broker is no error here: the poller retries and the mapping's
        state says why."""
        source = self._factory(m, self.store)
        try:
            source.connect()
        except SourceUnavailable as exc:
            log.info("mapping %s: broker not reachable at creation (%s); the poller retries", m.uuid, exc)
        finally:
            source.close()

    def get(self, uuid: str) -> Mapping:
        return self.store.get(uuid)

    def list(self, function: str | None = None) -> list[Mapping]:
        return self.store.list(function)

    def update(self, uuid: str, **changes: Any) -> Mapping:
        """Change settings (None leaves one unchanged); `enabled` moves State too."""
        enabled = changes.get("enabled")
        if enabled or changes.get("function"):
            # Enabling or repointing a mapping needs its function (ResourceNotFound otherwise).
            current = self.store.get(uuid)
            self.runner.get(changes.get("function") or current.function,
                            changes.get("qualifier", current.qualifier) or None)
        if enabled is not None:
            changes.update(state="Enabled" if enabled else "Disabled", state_reason="USER_INITIATED")
        m = self.store.update(uuid, lambda cur: cur.with_changes(**changes))
        self._wake.set()
        return m

    def delete(self, uuid: str) -> Mapping:
        m = self.store.delete(uuid)
        self._wake.set()
        return m

    def status(self, uuid: str) -> dict[str, Any]:
        """The mapping with what its poller observed (counts, iterator age), for `source get`."""
        m = self.store.get(uuid)
        with self._lock:
            entry = self._pollers.get(uuid)
        stats = dict(vars(entry[1].stats)) if entry else {}
        stats.pop("extra", None)
        return {"mapping": m, "running": entry is not None, "stats": stats}

    # ------------------------------------------------------------------ pollers

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="event-sources", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        seen = None
        while not self._stop.is_set():
            try:
                self._disable_orphans()
                version = self.store.version()
                if version != seen or self._any_gone() or self._may_poll is not None:
                    seen = version
                    self.reconcile()
            except Exception:  # a bad row must not stop every mapping: log, try again later
                log.exception("event sources: reconcile failed")
            self._wake.wait(RECONCILE_S)
            self._wake.clear()

    def _disable_orphans(self) -> None:
        """Disable the enabled mappings whose function no longer exists (deleted since), even
        if no record has come to find out: the state says so within RECONCILE_S."""
        for m in self.store.list():
            if not m.enabled:
                continue
            try:
                self.runner.get(m.function, m.qualifier or None)
            except ResourceNotFound:
                reason = f"function {m.function} was deleted; enable the mapping again after deploying it"
                self.store.update(m.uuid, lambda cur, r=reason: cur.with_changes(
                    enabled=False, state="Disabled", state_reason=r))

    def _any_gone(self) -> bool:
        with self._lock:
            return any(p.function_gone for _, p in self._pollers.values())

    def reconcile(self) -> None:
        wanted = {m.uuid: m for m in self.store.list() if m.enabled}
        if self._may_poll is not None:  # a cluster: only the mappings whose lease we hold
            wanted = {u: m for u, m in wanted.items() if self._may_poll(u)}
        with self._lock:
            current = dict(self._pollers)
        for uuid, (config, poller) in current.items():
            m = wanted.get(uuid)
            if poller.function_gone:
                self._stop_poller(uuid)
                if m is not None:
                    reason = self._states.get(uuid, ("", ""))[1] or "function deleted"
                    self.store.update(uuid, lambda cur, r=reason: cur.with_changes(
                        enabled=False, state="Disabled", state_reason=r))
                    wanted.pop(uuid)
            elif m is None or _config(m) != config:
                self._stop_poller(uuid)
        for uuid, m in wanted.items():
            with self._lock:
                running = uuid in self._pollers
            if not running and not self._stop.is_set():
                self._start_poller(m)

    def _start_poller(self, m: Mapping) -> None:
        poller = Poller(m, self._factory(m, self.store), self.store, self._invoke, self._forward,
                        on_state=lambda result, reason, u=m.uuid: self._note(u, result, reason),
                        on_batch=lambda n, ok, u=m.uuid, f=m.function:
                            self.runner.metrics.source_batch(u, f, n, ok))
        with self._lock:
            self._pollers[m.uuid] = (_config(m), poller)
        poller.start()

    def _stop_poller(self, uuid: str) -> None:
        with self._lock:
            entry = self._pollers.pop(uuid, None)
        if entry is not None:
            entry[1].stop()

    def _invoke(self, function: str, body: bytes, qualifier: str, trace_id: str | None = None):
        return self.runner.invoke(function, body, qualifier=qualifier or None, trace_id=trace_id)

    def _forward(self, function: str, document: dict) -> None:
        self.runner.invoke_async(function, json.dumps(document).encode())

    def _note(self, uuid: str, result: str, reason: str) -> None:
        """Record LastProcessingResult / StateTransitionReason when they change (a write per
        change, not per batch)."""
        if self._states.get(uuid) == (result, reason):
            return
        self._states[uuid] = (result, reason)
        changes = {"last_result": result}
        if reason:
            changes["state_reason"] = reason
        try:
            self.store.update(uuid, lambda cur: cur.with_changes(**changes))
        except Exception:  # deleted meanwhile: its poller is about to stop
            pass

    def close(self) -> None:
        """Stop every poller (each after its invocation in flight) and the store."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            uuids = list(self._pollers)
            for _, poller in self._pollers.values():
                poller.request_stop()  # all at once: their invocations in flight end together
        for uuid in uuids:
            self._stop_poller(uuid)
        self.store.close()
