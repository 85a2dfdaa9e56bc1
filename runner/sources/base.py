"""The protocol of one event source (one broker kind), and the record every source yields.

A poller (poller.py) drives one `Source` per enabled mapping, from one thread:

    connect() -> [poll() -> invoke the function -> ack() / dead_letter()]* -> close()

Any broker failure raises `errors.SourceUnavailable`; the poller then closes the source, notes
why in the mapping's state and calls connect() again after a backoff. Records that were polled
but not acknowledged come back after a reconnect (or a restart of the runner): that is the
at-least-once contract, and every source must keep it.

Adding a broker (Kafka, SQS) is one module implementing this protocol, plus a line in
`sources/registry.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Record:
    """One message as the source read it.

    `id` is unique within the mapping and stable across redeliveries (the retry count is kept
    under it); `key` orders records (records with the same key are processed in order, even
    with ParallelizationFactor > 1); `arrival` is when the broker accepted it (unix seconds),
    for MaximumRecordAgeInSeconds and the iterator age; `deliveries` counts how often the
    broker handed it out, for SQS's ApproximateReceiveCount; `meta` is the source's own;
    `trace` is the trace context the message carried (a `X-Amzn-Trace-Id` or `traceparent`
    header or field, in Lambda's form: invocation/trace.py), "" when none."""

    id: str
    key: str
    data: bytes
    arrival: float
    deliveries: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    trace: str = ""


class Source(Protocol):
    ordered: bool
    """True when records of one key must be processed in order (streams, table changes): a
    failed record is then retried before any later record of the batch. False for queues,
    where only the failed items are retried."""

    def connect(self) -> None:
        """Open the connection and create what the mapping needs on the broker if missing (a
        consumer group, a durable consumer, a change-capture trigger), at the mapping's
        StartingPosition the first time, at the stored position afterwards."""

    def poll(self, max_records: int, wait_s: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `wait_s` for the first one. Records not
        acknowledged before a reconnect are returned again, before newer ones."""

    def ack(self, records: list[Record]) -> None:
        """Mark the records done (processed, filtered out or dead-lettered). Called only after
        their outcome is durable, never before; the position then survives kill -9."""

    def keep_alive(self, records: list[Record]) -> None:
        """The records are still being worked on (long retries): brokers that redeliver
        after a timeout (JetStream's AckWait) must not hand them out again meanwhile."""

    def dead_letter(self, target: str, document: dict[str, Any]) -> None:
        """Write Lambda's failure record to `target` (a stream, subject or table on this
        broker), durably, before the records it names are acknowledged."""

    def event(self, records: list[Record]) -> dict[str, Any]:
        """The Lambda event (Kinesis, SQS or DynamoDB Streams shape) for a batch."""

    def item_id(self, record: Record) -> str:
        """The identifier a handler names in `batchItemFailures[].itemIdentifier` (Kinesis
        sequenceNumber, SQS messageId, DynamoDB SequenceNumber)."""

    def batch_info(self, records: list[Record]) -> dict[str, Any]:
        """The batch's coordinates for a failure record ({"KinesisBatchInfo": ...} etc.)."""

    def close(self) -> None:
        """Release the connection; idempotent, never raises."""
