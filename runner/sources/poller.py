"""One poller per enabled mapping: read batches from its source, invoke the function, settle.

The loop (one thread, `run()`):

    connect (backoff while the broker is unreachable; the mapping's state says why)
    -> gather a batch: up to BatchSize records, waiting up to MaximumBatchingWindowInSeconds
    -> drop records no FilterCriteria pattern matches (acknowledged, never invoked)
    -> split into lanes by record key (ParallelizationFactor, capped by MaximumConcurrency):
       records of one key always go to the same lane, and lanes of one batch run concurrently
    -> each lane: invoke with its records, retry what failed (below), until every record is
       processed or given up to the failure destination
    -> acknowledge the whole batch, only now (at least once: an outcome is known and durable
       before the broker forgets a record; a kill -9 before this redelivers the batch)

Retries in a lane, per Lambda's stream semantics:

* A function error fails the whole batch. With BisectBatchOnFunctionError the batch is split
  in halves, each processed in order (a split is not counted as a retry, as on Lambda), so a
  poison record is isolated in ceil(log2(n)) + 1 invocations that hold it.
* With ReportBatchItemFailures the handler names the failed items; an ordered source retries
  from the first one named (the rest of the batch after it; only that one is charged a
  retry), a queue retries only those named.
* Each record that failed is counted in the store (durably, before the retry), so a record is
  given up after MaximumRetryAttempts even across kill -9. Records older than
  MaximumRecordAgeInSeconds are given up before an invocation. Given-up records go to the
  on-failure destination (Lambda's failure record), and only then are acknowledged.
* Throttling (TooManyRequests) is not a failure: the lane waits and retries, nothing dropped.
* The function deleted: the mapping is disabled, its records stay on the broker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from runner.errors import ResourceNotFound, SourceUnavailable, TooManyRequests
from runner.invocation_record import InvocationResult
from runner.model import MAX_PAYLOAD_BYTES, function_arn
from runner.sources.base import Record, Source
from runner.sources.filters import compile_patterns, matches_any
from runner.sources.shapes import failure_record
from runner.storage.mapping_model import Mapping
from runner.storage.mappings import MappingStore

log = logging.getLogger(__name__)

FIRST_WAIT_S = 0.5  # a poll blocks this long for the first record, then the stop flag is checked
RETRY_BASE_S = 0.05  # backoff after a failed batch, doubling, up to RETRY_MAX_S
RETRY_MAX_S = 2.0
CONNECT_BASE_S = 0.2  # backoff after a broker failure, doubling, up to CONNECT_MAX_S
CONNECT_MAX_S = 5.0

Invoke = Callable[[str, bytes, str, str | None], InvocationResult]  # function, body, qualifier, trace
Forward = Callable[[str, dict], None]


@dataclass
class Stats:
    """What `runner source get` shows beside the stored state (in memory, per poller)."""

    batches: int = 0
    invocations: int = 0
    processed: int = 0
    failed_invocations: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    throttled: int = 0
    iterator_age_ms: float = 0.0
    last_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Stopped(Exception):
    """The poller is stopping: the batch in hand is left unacknowledged (redelivered later)."""


class Poller:
    def __init__(self, mapping: Mapping, source: Source, store: MappingStore, invoke: Invoke,
                 forward: Forward, on_state: Callable[[str, str], None] | None = None,
                 on_batch: Callable[[int, bool], None] | None = None) -> None:
        """`on_batch(records, ok)` hears every batch handed to the function (the metrics)."""
        self.m = mapping
        self.source = source
        self.store = store
        self.invoke_fn = invoke
        self.forward = forward
        self.on_state = on_state or (lambda result, reason: None)
        self.on_batch = on_batch or (lambda records, ok: None)
        self.stats = Stats()
        self.patterns = compile_patterns(mapping.filters)
        self.lanes = min(mapping.parallelization, mapping.max_concurrency or mapping.parallelization)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix=f"lane-{mapping.uuid[:8]}") \
            if self.lanes > 1 else None
        self._reader = ThreadPoolExecutor(1, thread_name_prefix=f"read-{mapping.uuid[:8]}")
        # The acknowledgement of the last batch runs here while the next batch's event is
        # built; the next invocation waits for it (_settle_ack), so at most one processed
        # batch is ever unacknowledged: the duplicate bound after a crash stays one batch.
        self._acker = ThreadPoolExecutor(1, thread_name_prefix=f"ack-{mapping.uuid[:8]}")
        self._pending_ack = None
        self._ack_lock = threading.Lock()
        self.function_gone = False
        # Whether the store may hold retry counts of this mapping (some from before a crash).
        self._counted = store.has_attempts(mapping.uuid)

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"poller-{self.m.uuid[:8]}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the poller to stop after its invocation in flight, without waiting."""
        self._stop.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the invocation in flight; the batch in hand, if unfinished, stays
        unacknowledged on the broker."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._reader.shutdown(wait=True)  # a read in flight ends within FIRST_WAIT_S (+ window)
        self._acker.shutdown(wait=True)
        self.source.close()

    def run(self) -> None:
        delay = CONNECT_BASE_S
        while not self._stop.is_set():
            try:
                self.source.connect()
                self.on_state("OK" if self.stats.batches else "No records processed", "")
                delay = CONNECT_BASE_S
                self._loop()
            except SourceUnavailable as exc:
                self.stats.last_error = str(exc)
                self.on_state(f"PROBLEM: Connection error. {exc}", "")
                log.warning("mapping %s: %s; retrying in %.1f s", self.m.uuid, exc, delay)
            except Stopped:
                pass
            except Exception:  # a bug must not end the mapping: log it, back off, go on
                log.exception("mapping %s: poller failed; restarting it", self.m.uuid)
            self.source.close()
            if self.function_gone:
                return
            self._stop.wait(delay)
            delay = min(delay * 2, CONNECT_MAX_S)

    def _loop(self) -> None:
        """Poll and process batches, reading the next batch while this one is invoked. The
        batch read ahead is not acknowledged before it is processed, so a crash redelivers it
        without a duplicate (nothing of it ran); order is kept (batches run one after
        another). The connection is left only once no read is in flight."""
        ahead = self._reader.submit(self.gather)
        try:
            while not self._stop.is_set():
                records = ahead.result()
                ahead = self._reader.submit(self.gather)
                self.step(records, overlap=True)
        finally:
            try:
                ahead.result()
            except Exception:  # the read failed too, or was pointless: the batch is redelivered
                pass
            try:
                self._settle_ack()
            except Exception:  # not acknowledged: redelivered after the reconnect
                pass
            self._pending_ack = None

    def _settle_ack(self) -> None:
        """Wait for the last batch's acknowledgement. Lanes call this concurrently: the lock
        holds every lane until it is done, and a failed one stays in place so that every lane
        raises it (no invocation starts while a processed batch is unacknowledged)."""
        with self._ack_lock:
            if self._pending_ack is not None:
                self._pending_ack.result()
                self._pending_ack = None

    # ------------------------------------------------------------------ one batch

    def gather(self) -> list[Record]:
        """Up to BatchSize records: as soon as any are there when the window is 0, else once
        the batch is full or the window since the first record has passed."""
        want = self.m.batch_size
        records = self.source.poll(want, FIRST_WAIT_S)
        if not records or self.m.batching_window_s <= 0:
            return records
        end = time.monotonic() + self.m.batching_window_s
        while len(records) < want and not self._stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            records += self.source.poll(want - len(records), min(left, FIRST_WAIT_S))
        return records

    def step(self, records: list[Record] | None = None, overlap: bool = False) -> None:
        """Process one batch (`records`, or one gathered now) and acknowledge it: before
        returning, or with `overlap` (the poller's loop) in the background, settled before
        the next invocation."""
        if records is None:
            records = self.gather()
        if not records:
            return
        self.stats.batches += 1
        self.stats.iterator_age_ms = max(0.0, (time.time() - records[-1].arrival) * 1000)
        wanted = [r for r in records if matches_any(self.patterns, self._shaped(r))] \
            if self.patterns else records
        self.stats.filtered += len(records) - len(wanted)
        lanes: list[list[Record]] = [[] for _ in range(self.lanes)]
        for r in wanted:
            lanes[zlib.crc32(r.key.encode()) % self.lanes].append(r)
        busy = [lane for lane in lanes if lane]
        if self._pool is None or len(busy) <= 1:
            for lane in busy:
                self.process(lane)
        else:
            futures = [self._pool.submit(self.process, lane) for lane in busy]
            wait(futures)  # every lane settled before the batch is left (or the source reconnected)
            for f in futures:
                f.result()  # re-raises Stopped / SourceUnavailable from a lane
        self._settle_ack()  # the previous batch's, if no invocation of this one waited for it
        if overlap:
            self._pending_ack = self._acker.submit(self.source.ack, records)
        else:
            self.source.ack(records)
        self.on_state("OK", "")

    def _shaped(self, r: Record) -> dict:
        return self.source.event([r])["Records"][0]

    # ------------------------------------------------------------------ retries

    def process(self, records: list[Record]) -> None:
        """Run `records` (one lane, in order) until each is processed or given up."""
        pending = records
        backoff = RETRY_BASE_S
        while pending:
            if self._stop.is_set():
                raise Stopped()
            pending = self._give_up_old(pending)
            if not pending:
                return
            # Compact and unchecked (the event is built here, it has no cycles): a 100-record
            # batch is ~45 KB and this is on every batch's path.
            body = json.dumps(self.source.event(pending), separators=(",", ":"), ensure_ascii=False,
                              check_circular=False).encode()
            if len(body) > MAX_PAYLOAD_BYTES:
                if len(pending) == 1:
                    self._give_up(pending, "PayloadTooLarge", None, 0)
                    return
                half = len(pending) // 2  # a batch over 6 MB is split, never truncated
                self.process(pending[:half])
                self.process(pending[half:])
                return
            # A batch runs under the trace of its first record that carried one (Lambda's SQS
            # shape names it per record; an invocation can run under one trace only).
            carried = next((r.trace for r in pending if r.trace), None)
            result = self._invoke(body, carried)
            failed, blamed, whole = self._failures(result, pending)
            self.on_batch(len(pending), not failed)
            failed_ids = {id(r) for r in failed}
            done = [r for r in pending if id(r) not in failed_ids]
            self.stats.processed += len(done)
            if not failed:
                self._forget(pending)
                return
            self.stats.failed_invocations += 1
            if whole and self.m.bisect_on_error and len(pending) > 1:
                half = len(pending) // 2
                self.process(pending[:half])
                self.process(pending[half:])
                return
            self._forget(done)
            self._counted = True
            counts = self.store.add_attempt(self.m.uuid, [r.id for r in blamed])
            limit = self.m.max_retries
            spent = [r for r in blamed if limit != -1 and counts[r.id] > limit]
            if spent:
                self._give_up(spent, "RetryAttemptsExhausted", result, max(counts[r.id] for r in spent))
            spent_ids = {id(r) for r in spent}
            pending = [r for r in failed if id(r) not in spent_ids]
            if pending:
                self.source.keep_alive(pending)
                if self._stop.wait(backoff):
                    raise Stopped()
                backoff = min(backoff * 2, RETRY_MAX_S)

    def _invoke(self, body: bytes, trace_id: str | None = None) -> InvocationResult:
        wait = RETRY_BASE_S
        while True:
            if self._stop.is_set():
                raise Stopped()
            try:
                self._settle_ack()
                self.stats.invocations += 1
                return self.invoke_fn(self.m.function, body, self.m.qualifier, trace_id)
            except TooManyRequests:
                # Reserved concurrency reached: slow down, drop nothing, count no failure.
                self.stats.throttled += 1
                self._stop.wait(wait)
                wait = min(wait * 2, RETRY_MAX_S)
            except ResourceNotFound as exc:
                self.function_gone = True
                self.on_state("PROBLEM: Function not found", f"function {self.m.function} was deleted "
                              f"({exc.message}); the mapping is disabled until it is enabled again")
                self._stop.set()
                raise Stopped() from None

    def _failures(self, result: InvocationResult, pending: list[Record]
                  ) -> tuple[list[Record], list[Record], bool]:
        """(the records to retry, those of them whose retry count grows, whether the whole
        batch failed). An ordered source retries from the first item named, but only that
        item is charged: the records after it were not processed, they did not fail, and
        once it is given up they go on without it."""
        if result.function_error is not None:
            self.stats.last_error = (result.error or {}).get("errorMessage", "function error")
            return pending, pending, True
        if not self.m.report_batch_item_failures:
            return [], [], False
        try:
            doc = json.loads(result.payload) if result.payload else None
            items = (doc or {}).get("batchItemFailures") if isinstance(doc, dict) else None
            if not items:
                return [], [], False
            ids = {str(i["itemIdentifier"]) for i in items}
        except (ValueError, TypeError, KeyError):
            return pending, pending, True  # as Lambda: an unreadable response fails the batch
        by_id = {self.source.item_id(r): n for n, r in enumerate(pending)}
        if not ids <= by_id.keys() or "" in ids:
            return pending, pending, True  # an identifier not in the batch fails the batch
        if self.source.ordered:
            first = min(by_id[i] for i in ids)
            return pending[first:], [pending[first]], False
        named = [r for r in pending if self.source.item_id(r) in ids]
        return named, named, False

    def _give_up_old(self, pending: list[Record]) -> list[Record]:
        if self.m.max_record_age_s == -1:
            return pending
        cutoff = time.time() - self.m.max_record_age_s
        old = [r for r in pending if r.arrival < cutoff]
        if old:
            self._give_up(old, "RecordAgeExceeded", None, 0)
        return [r for r in pending if r.arrival >= cutoff]

    def _give_up(self, records: list[Record], condition: str, result: InvocationResult | None,
                 invokes: int) -> None:
        """Send the records' failure record to the destination (durably) before they are
        acknowledged; with no destination they are dropped, and the log says so."""
        doc = failure_record(
            request_id=result.request_id if result else "", function_arn=function_arn(self.m.function),
            condition=condition, invokes=invokes, error=result.function_error if result else None,
            batch_info=self.source.batch_info(records), records=self.source.event(records)["Records"])
        target = self.m.on_failure
        kind, _, name = target.partition(":")
        if not target:
            log.warning("mapping %s: %d record(s) given up (%s) and dropped: no on-failure destination",
                        self.m.uuid, len(records), condition)
        elif kind == "function":
            self.forward(name, doc)
        else:
            self.source.dead_letter(name, doc)
        self.stats.dead_lettered += len(records)
        self._forget(records)

    def _forget(self, records: list[Record]) -> None:
        # Only records that ever failed have a count; a clean batch costs no write, and while
        # this mapping has no counted failure at all, not even the read.
        if not records or not self._counted:
            return
        counted = self.store.attempts(self.m.uuid, [r.id for r in records])
        self.store.clear_attempts(self.m.uuid, [k for k, v in counted.items() if v])

