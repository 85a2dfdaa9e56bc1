"""Asynchronous (Event) invocation: accept durably, run later, retry, deliver destinations.

    accept:   validate -> resolve the function (unknown -> ResourceNotFound, nothing queued)
              -> EventStore.enqueue (fsync'ed) -> return the request id  ("202 Accepted")
    dispatch: one thread picks due events, a small worker pool runs them through the same
              synchronous invoke path as everything else, with the event's request id
    outcome:  success                       -> on_success record, event removed
              function error, retries left  -> rescheduled with backoff (base, 2x base)
              function error, none left     -> on_failure record (function or dead letters)
              throttled (TooManyRequests)   -> waits in the queue, no attempt counted
              host failure (a bug, full disk) -> counted as an attempt, like a function error
              older than max_event_age_s    -> on_failure record, condition EventAgeExceeded
              outcome not recordable        -> stays queued, runs again UNRECORDED_BACKOFF_S later

At-least-once, not exactly-once: an event is removed only in the transaction that records its
outcome (storage/events.py), so a crash between "the handler ran" and that commit runs it
again after restart, with the same request id; handlers that must not repeat side effects
de-duplicate on context.aws_request_id, as on Lambda. The store notes when each attempt
starts; at start-up the attempts a crash cut short are handed to `on_interrupted` (the
Runner writes them into the function's log), so both runs of such an event show there.

This module sits beside runner.py and is handed the Runner's invoke and resolve callables, so
it never imports the Runner (runner.py imports it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from runner.errors import InternalError, PlatformError, ResourceNotFound, TooManyRequests
from runner.invocation_record import InvocationResult, check_payload, new_request_id
from runner.metrics.recorder import Metrics, NullMetrics
from runner.model import DEFAULT_DLQ, FunctionVersion, function_arn
from runner.storage.events import DeadLetter, Event, EventStore, Outcome

log = logging.getLogger(__name__)

# Lambda raised the asynchronous payload limit from 256 KB to 1 MB in October 2025.
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_WORKERS = 4
DEFAULT_RETRY_BASE_S = 60.0  # Lambda waits about 1 minute, then 2, between retries
DEFAULT_THROTTLE_DELAY_S = 0.5  # a throttled event is tried again this much later
IDLE_POLL_S = 1.0  # upper bound on a dispatcher sleep; enqueues wake it at once anyway
# An event whose outcome could not be recorded (the store failed: a full disk) stays queued and
# is held back this long in memory before it runs again, instead of running in a tight loop.
UNRECORDED_BACKOFF_S = 10.0

Invoke = Callable[..., InvocationResult]
Resolve = Callable[[str, str | None], FunctionVersion]
Interrupted = Callable[[Event, float], None]


def check_async_payload(payload: bytes | str | None) -> bytes:
    """The event as stored: JSON, at most MAX_ASYNC_PAYLOAD_BYTES (empty means null)."""
    return check_payload(payload, MAX_ASYNC_PAYLOAD_BYTES, "asynchronous")


class AsyncInvoker:
    """The dispatcher. Thread-safe; `submit` may be called from any thread."""

    def __init__(self, invoke: Invoke, resolve: Resolve, store: EventStore, *,
                 workers: int = DEFAULT_WORKERS, retry_base_s: float = DEFAULT_RETRY_BASE_S,
                 throttle_delay_s: float = DEFAULT_THROTTLE_DELAY_S,
                 on_interrupted: Interrupted | None = None,
                 metrics: Metrics | None = None, spans=None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._invoke = invoke
        self._resolve = resolve
        self._on_interrupted = on_interrupted
        self.metrics = metrics if metrics is not None else NullMetrics()  # (issue 22)
        self.spans = spans  # spans.Spans (OTLP export), or None
        self.store = store
        self.workers = workers
        self.retry_base_s = retry_base_s
        self.throttle_delay_s = throttle_delay_s
        self._cond = threading.Condition()
        self._running: set[str] = set()  # ids lent to workers; never handed out twice
        # Throttled events: id -> not before. Memory only, so a throttle costs no fsync: it is
        # not an attempt, and after a restart the event is simply due again.
        self._deferred: dict[str, float] = {}
        self._kick = False  # set when something changed since the dispatcher last looked
        self._closing = False
        # Held while recording an outcome; close() takes it to stop late writers before the
        # store is closed underneath them.
        self._record_lock = threading.Lock()
        self._stopped = False
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="event")
        self._thread = threading.Thread(target=self._loop, name="event-dispatch", daemon=True)

    def start(self) -> None:
        """Name the attempts a crash cut short (on_interrupted), then start dispatching."""
        for event, started_at in self.store.interrupted():
            if self._on_interrupted is not None:
                try:
                    self._on_interrupted(event, started_at)
                except Exception:  # a note that cannot be written must not stop the queue
                    log.exception("async event %s: the note of its interrupted attempt was "
                                  "not written", event.id)
        self._thread.start()

    # ------------------------------------------------------------------ accept

    def submit(self, name: str, payload: bytes | str | None = None,
               qualifier: str | None = None, *, key: str | None = None,
               request_id: str | None = None, trace_id: str | None = None) -> str | None:
        """Queue an event durably and return its request id. Raises before queueing anything
        for a bad payload or an unknown function/qualifier. With a delivery `key` (push
        sources), returns None, queueing nothing, when that key was delivered before."""
        body = check_async_payload(payload)
        version = self._resolve(name, qualifier)
        now = time.time()
        rid = request_id or new_request_id()
        if not self.store.enqueue(Event(rid, name, qualifier or "", body, now, 0, now,
                                        version.function_uid, trace_id or ""), key):
            return None
        self.metrics.event_received(name)
        self._wake()
        return rid

    def replay(self, name: str, ids: list[str] | None = None) -> list[str]:
        """Queue dead letters of `name` again (all, or the given request ids)."""
        replayed = self.store.replay(name, ids, time.time())
        self._wake()
        return replayed

    # ------------------------------------------------------------------ dispatch

    def wake(self) -> None:
        """Look at the queue now (a shared queue's listener calls it when another node queued)."""
        self._wake()

    def _wake(self) -> None:
        with self._cond:
            self._kick = True
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
                self._kick = False
                now = time.time()
                for eid in [e for e, t in self._deferred.items() if t <= now]:
                    del self._deferred[eid]
                free = self.workers - len(self._running)
                busy = self._running | self._deferred.keys()
            batch = self.store.due(time.time(), busy, free) if free > 0 else []
            with self._cond:
                if self._closing:
                    return
                for event in batch:
                    self._running.add(event.id)
            for event in batch:
                future = self._executor.submit(self._run, event)
                # A run cancelled by close() before it started must not count as running.
                future.add_done_callback(
                    lambda f, eid=event.id: f.cancelled() and self._finished(eid))
            if batch:
                continue
            with self._cond:
                if self._closing or self._kick:
                    continue
                timeout = IDLE_POLL_S
                if len(self._running) < self.workers:
                    wake_times = list(self._deferred.values())
                    nxt = self.store.next_due_at(self._running | self._deferred.keys())
                    if nxt is not None:
                        wake_times.append(nxt)
                    if wake_times:
                        timeout = min(IDLE_POLL_S, max(0.0, min(wake_times) - time.time()))
                if timeout > 0:
                    self._cond.wait(timeout)

    def _run(self, event: Event) -> None:
        try:
            self._process(event)
        except Exception:  # keep the worker alive; the event stays queued and runs again
            # Only the store can fail here (_process turns every invoke failure into an
            # attempt): nothing was recorded, so the event runs again, held back in memory
            # (writing a new due time could fail the same way).
            log.exception("async event %s of %s: its outcome could not be recorded; it stays "
                          "queued and runs again in %.0f s", event.id, event.function,
                          UNRECORDED_BACKOFF_S)
            with self._cond:
                self._deferred[event.id] = time.time() + UNRECORDED_BACKOFF_S
        finally:
            self._finished(event.id)

    def _finished(self, event_id: str) -> None:
        with self._cond:
            self._running.discard(event_id)
            self._kick = True
            self._cond.notify_all()

    def _process(self, event: Event) -> None:
        now = time.time()
        try:
            version = self._resolve(event.function, event.qualifier or None)
            if event.function_uid and version.function_uid != event.function_uid:
                raise ResourceNotFound(f"function {event.function!r} was deleted and created anew")
        except ResourceNotFound as exc:
            if event.function_uid:
                # Accepted for a function that was deleted since (Runner.delete discards its
                # queue; this one was in flight): discarded, as Lambda does, never run on or
                # kept for a new function of the same name.
                self._record(lambda: self.store.complete(event.id, Outcome()))
                self.metrics.event_dropped(event.function, "deleted")
                log.warning("async event %s of %s: discarded, its function was deleted (%s)",
                            event.id, event.function, exc.message)
                return
            # The function (or its qualifier) was deleted after the event was accepted: there
            # is no configuration to consult, so the event goes to the dead-letter store.
            doc = {"errorType": exc.error_type, "errorMessage": exc.message}
            record = self._record_doc(event, None, "RetriesExhausted", event.attempts, doc, None)
            self._record(lambda: self.store.complete(event.id, Outcome(dead_letter=DeadLetter(
                event.id, event.function, event.qualifier, event.payload, record, now))))
            log.warning("async event %s: %s; kept as a dead letter", event.id, exc.message)
            return
        cfg = version.config
        if now - event.enqueued_at > cfg.max_event_age_s:
            self._fail(event, version, "EventAgeExceeded", event.attempts, None, None)
            return
        self.store.started(event.id, time.time())  # fails like any store write: _run handles it
        self.metrics.event_age(event.function, now - event.enqueued_at)
        if self.spans is not None:
            self.spans.queue_wait(event.function, event.id, event.trace_id or None,
                                  event.enqueued_at, now)
        try:
            result = self._invoke(event.function, event.payload,
                                  qualifier=event.qualifier or None, request_id=event.id,
                                  trace_id=event.trace_id or None)
        except TooManyRequests:
            with self._cond:
                self._deferred[event.id] = time.time() + self.throttle_delay_s
            return
        except PlatformError as exc:  # e.g. the host is out of environments of a runtime
            result = None
            error_doc: dict[str, Any] | None = {"errorType": exc.error_type,
                                                "errorMessage": exc.message}
        except Exception as exc:  # a host failure (a bug, a full disk): counts as an attempt,
            # since the handler may have run; retries and max_retries apply as to any error.
            log.exception("async event %s of %s: invoke failed", event.id, event.function)
            result = None
            error_doc = {"errorType": InternalError.error_type,
                         "errorMessage": f"internal error: {type(exc).__name__}: {exc}"}
        else:
            error_doc = result.error if result.function_error else None
        attempts = event.attempts + 1
        if error_doc is None and result is not None:
            self._succeed(event, version, attempts, result)
            return
        delay = self.retry_base_s * (2 ** (attempts - 1))
        age_then = time.time() + delay - event.enqueued_at
        if attempts <= cfg.max_retries and age_then <= cfg.max_event_age_s:
            self._record(lambda: self.store.reschedule(
                event.id, time.time() + delay, attempts, error_doc))
            self.metrics.event_retry(event.function)
            return
        condition = "RetriesExhausted" if attempts > cfg.max_retries else "EventAgeExceeded"
        self._fail(event, version, condition, attempts, result, error_doc)

    def _succeed(self, event: Event, version: FunctionVersion, attempts: int,
                 result: InvocationResult) -> None:
        target = version.config.on_success
        outcome = Outcome()
        if target:
            record = self._record_doc(event, version, "Success", attempts,
                                      _json_or_text(result.payload), result)
            outcome = Outcome(forward=_forward(target, record))
        self._record(lambda: self.store.complete(event.id, outcome))

    def _fail(self, event: Event, version: FunctionVersion, condition: str, attempts: int,
              result: InvocationResult | None, error_doc: dict[str, Any] | None) -> None:
        target = version.config.on_failure
        record = self._record_doc(event, version, condition, attempts, error_doc, result)
        if target == DEFAULT_DLQ:
            outcome = Outcome(dead_letter=DeadLetter(event.id, event.function, event.qualifier,
                                                     event.payload, record, time.time()))
        elif target:
            outcome = Outcome(forward=_forward(target, record))
        else:
            outcome = Outcome()
            log.warning("async event %s of %s discarded (%s after %d attempts); deploy with "
                        "--on-failure dlq to keep such events", event.id, event.function,
                        condition, attempts)
        try:
            self._record(lambda: self.store.complete(event.id, outcome))
        except Exception:
            if target == DEFAULT_DLQ:
                self.metrics.dead_letter(event.function, ok=False)
            elif target:
                self.metrics.destination_failure(event.function)
            raise
        if target == DEFAULT_DLQ:
            self.metrics.dead_letter(event.function)
        elif not target:
            self.metrics.event_dropped(
                event.function, "expired" if condition == "EventAgeExceeded" else "retries")

    def _record_doc(self, event: Event, version: FunctionVersion | None, condition: str,
                    attempts: int, response: Any, result: InvocationResult | None) -> dict:
        """Lambda's destination record (the invocation record sent to destinations)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        executed = result.executed_version if result else (version.version if version else "$LATEST")
        doc: dict[str, Any] = {
            "version": "1.0",
            "timestamp": f"{stamp}.{int(time.time() * 1000) % 1000:03d}Z",
            "requestContext": {
                "requestId": event.id,
                "functionArn": function_arn(event.function, executed),
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": _json_or_text(event.payload),
        }
        if result is not None or response is not None:
            ctx: dict[str, Any] = {"statusCode": 200, "executedVersion": executed}
            if condition != "Success":
                ctx["functionError"] = "Unhandled"
            doc["responseContext"] = ctx
            doc["responsePayload"] = response
        return doc

    def _record(self, write: Callable[[], None]) -> None:
        with self._record_lock:
            if self._stopped:
                return  # shut down: the event stays queued and runs again after restart
            write()

    # ------------------------------------------------------------------ lifecycle

    def close(self, grace_s: float = 5.0) -> None:
        """Stop dispatching, give running events `grace_s` to finish, then stop recording:
        anything still running stays queued in the store and runs again after a restart."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace_s
        with self._cond:
            while self._running and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
        with self._record_lock:
            self._stopped = True


def _forward(target: str, record: dict) -> Event:
    now = time.time()
    return Event(str(uuid.uuid4()), target, "", json.dumps(record).encode(), now, 0, now)


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")
