"""The one place a source type is tied to its implementation (a new broker: one line here)."""

from __future__ import annotations

from runner.sources.base import Source
from runner.storage.mapping_model import Mapping
from runner.storage.mappings import MappingStore


def make_source(mapping: Mapping, store: MappingStore) -> Source:
    # Imported here: each client library loads only when a mapping of its kind runs.
    if mapping.source_type == "redis-stream":
        from runner.sources.redis_stream import RedisStreamSource

        return RedisStreamSource(mapping)
    if mapping.source_type == "nats-jetstream":
        from runner.sources.nats_jetstream import NatsJetStreamSource

        return NatsJetStreamSource(mapping)
    if mapping.source_type == "postgres-table":
        from runner.sources.postgres_table import PostgresTableSource

        return PostgresTableSource(mapping, store)
    raise ValueError(f"no source for {mapping.source_type!r}")  # Mapping.validate() refuses it first
