"""NATS JetStream through a durable pull consumer; records in SQS shape.

Position: the broker keeps it. Each mapping has its own durable consumer (`runner-<uuid>`) on
the stream that captures the subject (a stream `RUNNER_<subject>` is created when none
does), with explicit acks and DeliverPolicy from StartingPosition (ALL, or BY_START_TIME at the
mapping's creation for LATEST and at the given time for AT_TIMESTAMP).
A message is acknowledged only after its batch's outcome is known; one that is not (the runner
killed, the connection lost) is redelivered by JetStream after ACK_WAIT_S, with its delivery
count (SQS's ApproximateReceiveCount) raised. While a batch is in hand (a slow function, a
retry), the source tells JetStream every ACK_WAIT_S / 5 that it is still in progress, so
nothing is redelivered under a running invocation.

nats-py is asyncio-only; the source runs its own event loop on a thread of its own and the
poller's thread calls into it (`_call`), so the poller stays synchronous like the others.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from datetime import datetime, timezone
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from runner.errors import SourceUnavailable
from runner.invocation import trace
from runner.sources.base import Record
from runner.sources.shapes import queue_arn, sqs_record
from runner.storage.mapping_model import Mapping, redacted

ACK_WAIT_S = 10.0  # redelivery after a crash takes this long; in-progress pings keep it off otherwise
CALL_TIMEOUT_S = 30.0


def stream_name_for(subject: str, prefix: str = "RUNNER_") -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", subject)


class NatsJetStreamSource:
    ordered = False

    def __init__(self, mapping: Mapping) -> None:
        self.m = mapping
        self.durable = f"runner-{mapping.uuid}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc = None
        self._js = None
        self._sub = None
        self._stream = ""
        self._outstanding: dict[str, Any] = {}  # record id -> Msg polled and not yet acknowledged
        self._dlq_streams: set[str] = set()
        self._pinger: asyncio.Task | None = None

    # ------------------------------------------------------------------ the loop's thread

    def _call(self, coro, timeout: float = CALL_TIMEOUT_S):
        if self._loop is None:
            coro.close()
            raise SourceUnavailable("nats: not connected")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)
        except SourceUnavailable:
            raise
        except (nats.errors.Error, OSError, asyncio.TimeoutError, TimeoutError) as exc:
            raise SourceUnavailable(f"nats at {redacted(self.m.endpoint)}: {type(exc).__name__} {exc}") from None

    def connect(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"nats-{self.m.uuid[:8]}",
                                        daemon=True)
        self._thread.start()
        try:
            self._call(self._connect())
        except SourceUnavailable:
            self.close()
            raise

    async def _connect(self) -> None:
        # No reconnects inside the client: a lost connection surfaces as an error, the poller
        # closes this source and connects afresh (one recovery path for every broker).
        self._nc = await nats.connect(self.m.endpoint, allow_reconnect=False, connect_timeout=5,
                                      max_reconnect_attempts=0)
        self._js = self._nc.jetstream()
        self._stream = await self._stream_for(self.m.name, "RUNNER_")
        # LATEST is "from the mapping's creation" (Mapping.start_time), not DeliverPolicy.NEW,
        # which would skip what arrived before the poller connected.
        at = self.m.start_time()
        policy = DeliverPolicy.ALL if at is None else DeliverPolicy.BY_START_TIME
        start = None if at is None else datetime.fromtimestamp(at, timezone.utc)
        config = ConsumerConfig(durable_name=self.durable, deliver_policy=policy, opt_start_time=start,
                                ack_wait=ACK_WAIT_S, max_deliver=-1, filter_subject=self.m.name,
                                max_ack_pending=-1)
        self._sub = await self._js.pull_subscribe(self.m.name, durable=self.durable, stream=self._stream,
                                                  config=config)
        self._pinger = asyncio.get_running_loop().create_task(self._ping())

    async def _stream_for(self, subject: str, prefix: str) -> str:
        try:
            return await self._js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            name = stream_name_for(subject, prefix)
            await self._js.add_stream(name=name, subjects=[subject])
            return name

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(ACK_WAIT_S / 5)  # four chances before AckWait, even on a busy host
            for msg in list(self._outstanding.values()):
                try:
                    await msg.in_progress()
                except Exception:  # the connection is gone: the poller finds out on its next call
                    return

    # ------------------------------------------------------------------ the protocol

    def poll(self, max_records: int, wait_s: float) -> list[Record]:
        return self._call(self._fetch(max_records, wait_s), wait_s + CALL_TIMEOUT_S)

    async def _fetch(self, n: int, wait_s: float) -> list[Record]:
        if self._nc is None or self._nc.is_closed:
            raise SourceUnavailable(f"nats at {redacted(self.m.endpoint)}: connection closed")
        try:
            msgs = await self._sub.fetch(batch=n, timeout=max(wait_s, 0.05))
        except nats.errors.TimeoutError:
            return []
        out = []
        for msg in msgs:
            meta = msg.metadata
            rid = str(meta.sequence.stream)
            headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
            arrival = meta.timestamp.timestamp() if meta.timestamp else 0.0
            self._outstanding[rid] = msg
            out.append(Record(rid, rid, msg.data, arrival, meta.num_delivered,
                              {"headers": headers, "receipt": f"{self.durable}:{meta.sequence.consumer}"},
                              trace.from_message(headers)))
        return out

    def ack(self, records: list[Record]) -> None:
        self._call(self._ack([r.id for r in records]))

    async def _ack(self, ids: list[str]) -> None:
        for rid in ids:
            msg = self._outstanding.get(rid)
            if msg is not None:
                await msg.ack()
        await self._nc.flush()  # the acks reached the server before the records are forgotten
        for rid in ids:
            self._outstanding.pop(rid, None)

    def keep_alive(self, records: list[Record]) -> None:
        pass  # the pinger covers every outstanding message

    def dead_letter(self, target: str, document: dict[str, Any]) -> None:
        self._call(self._dead_letter(target, json.dumps(document).encode()))

    async def _dead_letter(self, target: str, body: bytes) -> None:
        if target not in self._dlq_streams:
            await self._stream_for(target, "RUNNER_DLQ_")
            self._dlq_streams.add(target)
        await self._js.publish(target, body)  # returns once JetStream stored it

    def event(self, records: list[Record]) -> dict[str, Any]:
        return {"Records": [sqs_record(r, self.m.name) for r in records]}

    def item_id(self, record: Record) -> str:
        return record.id

    def batch_info(self, records: list[Record]) -> dict[str, Any]:
        return {"SQSBatchInfo": {"messageIds": [r.id for r in records], "batchSize": len(records),
                                 "queueArn": queue_arn(self.m.name), "stream": self._stream}}

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        self._outstanding.clear()

        async def shutdown():
            if self._pinger is not None:
                self._pinger.cancel()
            if self._nc is not None and not self._nc.is_closed:
                try:
                    await asyncio.wait_for(self._nc.close(), 5)
                except Exception:  # a broken connection: closing it is all that is left
                    pass

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        except Exception:  # the loop is wedged; stopping it below is still right
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        if not loop.is_running():
            loop.close()
        self._nc = self._js = self._sub = self._pinger = None
