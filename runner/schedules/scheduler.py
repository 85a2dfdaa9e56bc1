"""Schedules: their management and the thread that fires each slot exactly once.

A slot is one fire time of a schedule's expression. The store keeps each schedule's next
undelivered slot (storage/schedules.py); `tick(now)` walks every due schedule forward:

    slot due (slot + its flexible-window offset <= now)
      now - slot <= max_event_age_s -> queue a Scheduled Event as an async invocation with the
                                       delivery key "schedule:NAME:CREATED:SLOT" (events.db
                                       refuses a key it has seen), then advance the slot
      older                         -> advance, recording the slot as dropped ("missed")
      function gone / refused       -> advance, recording it as dropped with the reason

The two steps (queue, advance) are two transactions in two files; a crash between them leaves
the slot current, and the restart's tick queues it again under the same key, which the queue
refuses: the slot fires once. A crash before the queue commit leaves nothing queued and the
slot current: it fires at restart. So a restart neither doubles nor silently drops a slot,
and slots missed while the server was down fire at start-up, oldest first, while within their
maximum event age (EventBridge Scheduler's rule for retries, applied to downtime: decision 054).

The flexible window's offset for a slot is a hash of (name, slot): the same after a restart.
The clock is injected: tests drive `tick(now)` with the times they choose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from runner.errors import InternalError, InvalidParameter, PlatformError, StorageFull
from runner.model import ACCOUNT, REGION, validate_name
from runner.schedules.expressions import At, Rate, parse, zone
from runner.storage.schedules import Schedule

log = logging.getLogger(__name__)

POLL_S = 1.0  # the longest the thread sleeps; EventBridge's precision is a minute
# submit(function, payload, qualifier, key, request_id) -> request id, or None if the key was
# delivered before; raises PlatformError (unknown function, ...) queueing nothing.
Submit = Callable[..., "str | None"]
_NS = uuid.UUID("6d0b7c1e-8a8e-4f7e-9a37-3e1f6c2b9d10")
UPDATABLE = ("function", "qualifier", "expression", "timezone", "input", "flexible_window_min",
             "max_retries", "max_event_age_s", "dead_letter", "start_at", "end_at", "enabled")


def schedule_arn(name: str) -> str:
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}"


def scheduled_event(s: Schedule, slot: float, request_id: str) -> dict[str, Any]:
    """EventBridge's "Scheduled Event"; the schedule's input, if any, is its `detail`."""
    when = datetime.fromtimestamp(slot, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": "0", "id": request_id, "detail-type": "Scheduled Event",
            "source": "aws.scheduler", "account": ACCOUNT, "time": when, "region": REGION,
            "resources": [schedule_arn(s.name)],
            "detail": s.input if s.input is not None else {}}


class Scheduler:
    def __init__(self, store, submit: Submit, *, clock: Callable[[], float] = time.time,
                 poll_s: float = POLL_S) -> None:
        self.store = store
        self._submit = submit
        self._clock = clock
        self._poll_s = poll_s
        self._tick_lock = threading.Lock()  # one tick at a time (thread and callers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ management

    def add(self, name: str, function: str, expression: str, **settings: Any) -> Schedule:
        now = self._clock()
        s = _check(Schedule(name=name, function=function, expression=expression,
                            created_at=now, **settings))
        return self.store.create(s, first_slot(s, now), now)

    def update(self, name: str, **changes: Any) -> Schedule:
        """Change settings; a change of expression, time zone or dates recomputes the next
        slot from now (as EventBridge does), other changes keep it."""
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise InvalidParameter(sorted(unknown)[0], f"is not a schedule setting; use one of "
                                   f"{', '.join(UPDATABLE)}")
        now = self._clock()
        old = self.store.get(name)
        s = _check(dataclasses.replace(old, **changes))
        timing = ("expression", "timezone", "start_at", "end_at")
        moved = any(getattr(s, k) != getattr(old, k) for k in timing)
        resumed = s.enabled and not old.enabled
        next_slot = first_slot(s, now) if (moved or resumed) else old.next_slot
        return self.store.replace(s, next_slot, now)

    def get(self, name: str) -> Schedule:
        return self.store.get(name)

    def list(self) -> list[Schedule]:
        return self.store.list()

    def delete(self, name: str) -> Schedule:
        return self.store.delete(name)

    # ------------------------------------------------------------------ firing

    def tick(self, now: float | None = None) -> list[tuple[str, float, str]]:
        """Deliver or drop every due slot; returns (schedule, slot, request id or "dropped:
        reason") for each, in order. Stops early (slot kept) if the queue cannot be written."""
        now = self._clock() if now is None else now
        done: list[tuple[str, float, str]] = []
        with self._tick_lock:
            for s in self.store.due(now):
                slot = s.next_slot
                while slot is not None and slot <= now:
                    if slot + window_offset(s, slot) > now:
                        break  # inside its flexible window, not yet its turn
                    nxt = following(s, slot)
                    outcome = self._deliver(s, slot, now)
                    if outcome is None:
                        return done  # storage failed: the slot stays current, tried again
                    dropped = outcome[9:] if outcome.startswith("dropped: ") else None
                    if not self.store.advance(s.name, slot, nxt, dropped, now):
                        break  # updated or deleted meanwhile; its new state rules
                    done.append((s.name, slot, outcome))
                    slot = nxt
        return done

    def _deliver(self, s: Schedule, slot: float, now: float) -> str | None:
        if now - slot > s.max_event_age_s:
            return (f"dropped: missed by {now - slot:.0f} s, beyond the schedule's "
                    f"max_event_age_s ({s.max_event_age_s})")
        key = f"schedule:{s.name}:{s.created_at!r}:{slot!r}"
        rid = str(uuid.uuid5(_NS, key))
        body = json.dumps(scheduled_event(s, slot, rid)).encode()
        try:
            got = self._submit(s.function, body, qualifier=s.qualifier or None, key=key,
                               request_id=rid)
        except (InternalError, StorageFull) as exc:  # a bug, a full disk: keep the slot
            log.warning("schedule %s: slot %s not queued (%s); trying again", s.name, slot, exc)
            return None
        except PlatformError as exc:  # unknown function, a refused payload: drop, say why
            return f"dropped: {exc.message}"
        return got or rid  # None: queued before a crash; the same request id

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bad schedule row must not stop every other schedule
                log.exception("scheduler tick failed")
            self._stop.wait(self._poll_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _check(s: Schedule) -> Schedule:
    validate_name(s.name, "name")
    validate_name(s.function, "function")
    parse(s.expression, s.timezone)
    zone(s.timezone)
    if not 0 <= s.flexible_window_min <= 1440:
        raise InvalidParameter("flexible_window_min", f"{s.flexible_window_min} is outside "
                               "0..1440 minutes")
    if not 0 <= s.max_retries <= 185:
        raise InvalidParameter("max_retries", f"{s.max_retries} is outside 0..185")
    if not 60 <= s.max_event_age_s <= 86400:
        raise InvalidParameter("max_event_age_s", f"{s.max_event_age_s} is outside 60..86400 "
                               "seconds")
    if s.start_at is not None and s.end_at is not None and s.end_at <= s.start_at:
        raise InvalidParameter("end_at", "is not after start_at; pick a later end")
    if s.input is not None and len(json.dumps(s.input)) > 256 * 1024:
        raise InvalidParameter("input", "is over 256 KB; send a reference to the data")
    return s


def first_slot(s: Schedule, now: float) -> float | None:
    """The first slot: rate() fires at its start (now, if none) and every period after;
    cron() at its first time after now (or at/after a later start); at() at its time."""
    expr = parse(s.expression, s.timezone)
    if isinstance(expr, Rate):
        anchor = s.start_at if s.start_at is not None else now
        slot = anchor if anchor >= now else anchor + expr.period_s * -(-(now - anchor) //
                                                                        expr.period_s)
    elif isinstance(expr, At):
        at = expr.next_after(datetime.fromtimestamp(0, timezone.utc))
        slot = at.timestamp() if at else None  # a past at() is due now, or dropped if too old
    else:  # strictly after creation; at or after a start date still ahead
        begin = s.start_at - 1e-6 if s.start_at is not None and s.start_at > now else now
        nxt = expr.next_after(datetime.fromtimestamp(begin, timezone.utc))
        slot = nxt.timestamp() if nxt else None
    return _until(s, slot)


def following(s: Schedule, slot: float) -> float | None:
    """The slot after `slot` (None when the expression or the end date says no more)."""
    expr = parse(s.expression, s.timezone)
    if isinstance(expr, At):
        return None
    anchor = datetime.fromtimestamp(s.start_at or s.created_at, timezone.utc)
    nxt = expr.next_after(datetime.fromtimestamp(slot, timezone.utc), anchor)
    if isinstance(expr, Rate):
        nxt = datetime.fromtimestamp(slot + expr.period_s, timezone.utc)
    return _until(s, nxt.timestamp() if nxt else None)


def _until(s: Schedule, slot: float | None) -> float | None:
    return None if slot is None or (s.end_at is not None and slot > s.end_at) else slot


def window_offset(s: Schedule, slot: float) -> float:
    """Where in its flexible window a slot is delivered: stable across restarts."""
    if not s.flexible_window_min:
        return 0.0
    h = hashlib.sha256(f"{s.name}:{slot!r}".encode()).digest()
    return int.from_bytes(h[:8], "big") % (s.flexible_window_min * 60)
