"""Redis Streams through a consumer group; records in Kinesis shape.

Position: the broker keeps it. Each mapping has its own consumer group (`runner-<uuid>`),
created at StartingPosition (TRIM_HORIZON: "0"; LATEST: the mapping's creation time, not "$",
which would skip what arrived before the poller connected; AT_TIMESTAMP: "<ms>-0"), and
reads as the consumer `runner` of that group. XREADGROUP ">" hands out new entries and adds
them to the consumer's pending list; they leave it with XACK, sent only after the batch's
outcome is known. After a reconnect or a restart of the runner the consumer first reads its
own pending list again ("0"), so a batch interrupted by kill -9 is redelivered, and XAUTOCLAIM
takes over entries another consumer of the group left pending for a minute.

Entries: the field `data` is the record's data (any bytes) and `partitionKey` its key;
an entry without `data` is delivered as the JSON object of its fields. Without a
`partitionKey`, the entry id is the key (no order between such entries across lanes).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import redis

from runner.errors import SourceUnavailable
from runner.invocation import trace
from runner.sources.base import Record
from runner.sources.shapes import arrival_iso, kinesis_record, stream_arn
from runner.storage.mapping_model import Mapping

CONSUMER = "runner"
CLAIM_IDLE_MS = 60_000  # pending entries of another consumer idle this long are taken over
SOCKET_TIMEOUT_S = 10.0


def _errors():
    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ResponseError,
            OSError)


class RedisStreamSource:
    ordered = True

    def __init__(self, mapping: Mapping) -> None:
        self.m = mapping
        self.group = f"runner-{mapping.uuid}"
        self.client: redis.Redis | None = None
        self._backlog = True  # read our own pending entries before new ones
        self._cursor = "0"

    def connect(self) -> None:
        url = urlparse(self.m.endpoint)
        try:
            self.client = redis.Redis.from_url(self.m.endpoint, socket_timeout=SOCKET_TIMEOUT_S,
                                               socket_connect_timeout=5.0)
            self.client.ping()
            at = self.m.start_time()
            start = "0" if at is None else f"{int(at * 1000)}-0"
            try:
                self.client.xgroup_create(self.m.name, self.group, id=start, mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # the group exists: its position is the truth
                    raise
            self._backlog, self._cursor = True, "0"
        except _errors() as exc:
            self.close()
            raise SourceUnavailable(f"redis at {url.hostname}:{url.port or 6379}: {exc}") from None

    def poll(self, max_records: int, wait_s: float) -> list[Record]:
        assert self.client is not None
        try:
            while self._backlog:
                # Our pending entries after the last one read (a batching window polls more
                # than once per batch: never the same entry twice in one batch).
                got = self._read(self._cursor, max_records, None)
                if got:
                    self._cursor = got[-1].id
                    return got
                self._backlog = False
                # Entries another consumer of the group left pending: taken over, returned
                # here (never by re-reading our own list from "0": a batch read ahead may be
                # on it, still in process).
                got = self._claim(max_records)
                if got:
                    return got
            return self._read(">", max_records, max(1, int(wait_s * 1000)))
        except _errors() as exc:
            raise SourceUnavailable(f"redis: {exc}") from None

    def _read(self, start: str, count: int, block_ms: int | None) -> list[Record]:
        reply = self.client.xreadgroup(self.group, CONSUMER, {self.m.name: start}, count=count, block=block_ms)
        out = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                if fields is None:  # trimmed away while pending: nothing left to deliver
                    self.client.xack(self.m.name, self.group, entry_id)
                    continue
                out.append(self._record(entry_id, fields, 1 if start == ">" else 2))
        return out

    def _claim(self, count: int) -> list[Record]:
        try:
            reply = self.client.xautoclaim(self.m.name, self.group, CONSUMER, CLAIM_IDLE_MS, "0-0", count=count)
        except redis.exceptions.ResponseError:
            return []  # a Redis without XAUTOCLAIM (< 6.2): pending entries of others stay theirs
        return [self._record(entry_id, fields, 2) for entry_id, fields in reply[1] if fields]

    @staticmethod
    def _record(entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> Record:
        rid = entry_id.decode()
        if b"data" in fields:
            data = fields[b"data"]
        else:
            data = json.dumps({k.decode(errors="replace"): v.decode(errors="replace")
                               for k, v in fields.items()}).encode()
        key = fields.get(b"partitionKey")
        arrival = int(rid.split("-", 1)[0]) / 1000
        # A `traceparent` or `X-Amzn-Trace-Id` field, next to `data`, is the entry's trace
        # context (the convention OpenTelemetry uses for message headers).
        carried = trace.from_message({k.decode(errors="replace"): v.decode(errors="replace")
                                      for k, v in fields.items()
                                      if k.lower() in (b"traceparent", b"x-amzn-trace-id")})
        return Record(rid, key.decode(errors="replace") if key is not None else rid, data, arrival,
                      deliveries, trace=carried)

    def ack(self, records: list[Record]) -> None:
        if not records:
            return
        try:
            self.client.xack(self.m.name, self.group, *[r.id for r in records])
        except _errors() as exc:
            raise SourceUnavailable(f"redis: {exc}") from None

    def keep_alive(self, records: list[Record]) -> None:
        pass  # pending entries stay ours until acknowledged; nothing times out

    def dead_letter(self, target: str, document: dict[str, Any]) -> None:
        try:
            self.client.xadd(target, {"data": json.dumps(document)})
        except _errors() as exc:
            raise SourceUnavailable(f"redis: dead-letter stream {target}: {exc}") from None

    def event(self, records: list[Record]) -> dict[str, Any]:
        return {"Records": [kinesis_record(r, self.m.name) for r in records]}

    def item_id(self, record: Record) -> str:
        return record.id

    def batch_info(self, records: list[Record]) -> dict[str, Any]:
        return {"KinesisBatchInfo": {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": records[0].id,
            "endSequenceNumber": records[-1].id,
            "approximateArrivalOfFirstRecord": arrival_iso(records[0].arrival),
            "approximateArrivalOfLastRecord": arrival_iso(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": stream_arn(self.m.name),
        }}

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection: nothing to do about it
                pass
