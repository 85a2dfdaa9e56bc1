"""PostgreSQL table changes, captured by a trigger into a change table; DynamoDB Streams shape.

On connect the source installs (idempotently) a change table `runner_changes`, a trigger
function `runner_capture()` and, on the mapped table, a row trigger `runner_capture` passing
the primary-key columns. Every insert, update and delete then adds a row (operation, keys,
new and old row as JSON) in the writer's own transaction: a change exists exactly when the
write committed.

Order: the trigger takes a transaction-scoped advisory lock before it draws the change's
sequence number, so writers of captured tables commit in sequence order, and a reader that has
seen sequence number N will never later see a smaller one commit (without it, a transaction
that drew 5 and committed after another that drew 6 would be skipped by a reader past 6).
The cost: captured writes serialise from their first captured change to their commit
(docs/decisions/051-postgres-changes-by-trigger.md says why this over logical decoding).

Position: the mapping store's checkpoint for partition "changes" (the last sequence number
processed), written after the batch's outcome is known. Changes older than RETENTION are
trimmed, as DynamoDB Streams keeps 24 hours.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
from psycopg import sql

from runner.errors import SourceUnavailable
from runner.sources.base import Record
from runner.sources.shapes import arrival_iso, dynamodb_record, table_stream_arn
from runner.storage.mapping_model import Mapping
from runner.storage.mappings import MappingStore

PARTITION = "changes"
RETENTION = "24 hours"
POLL_INTERVAL_S = 0.02  # an idle mapping looks for changes this often (one indexed query)
LOCK_KEY = 0x52554E4E  # "RUNN": the advisory lock every captured writer takes

SETUP = """
CREATE TABLE IF NOT EXISTS runner_changes (
    seq   bigserial PRIMARY KEY,
    tbl   text NOT NULL,
    op    text NOT NULL,
    keys  jsonb NOT NULL,
    new   jsonb,
    old   jsonb,
    at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS runner_changes_tbl ON runner_changes (tbl, seq);
CREATE OR REPLACE FUNCTION runner_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k jsonb := '{}';
    src jsonb;
    col text;
BEGIN
    PERFORM pg_advisory_xact_lock(%(lock)s);
    src := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    FOREACH col IN ARRAY TG_ARGV LOOP
        k := k || jsonb_build_object(col, src -> col);
    END LOOP;
    INSERT INTO runner_changes (tbl, op, keys, new, old) VALUES (
        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, k,
        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END,
        CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END);
    RETURN NULL;
END $$;
"""


class PostgresTableSource:
    ordered = True

    def __init__(self, mapping: Mapping, store: MappingStore) -> None:
        self.m = mapping
        self.store = store
        self.conn: psycopg.Connection | None = None
        self.qualified = ""
        self._read_to = 0  # the last sequence number handed out (ahead of the checkpoint)
        self._trimmed_at = 0.0

    def connect(self) -> None:
        try:
            self.conn = psycopg.connect(self.m.endpoint, autocommit=True, connect_timeout=5)
            with self.conn.transaction():
                self.conn.execute(sql.SQL(SETUP.replace("%(lock)s", str(LOCK_KEY))))
                row = self.conn.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                                        "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                                        (self.m.name,)).fetchone()
                if row is None:
                    raise SourceUnavailable(f"postgres: table {self.m.name!r} does not exist")
                self.qualified = f"{row[0]}.{row[1]}"
                keys = [r[0] for r in self.conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
                    (self.m.name,))]
                if not keys:
                    raise SourceUnavailable(f"postgres: table {self.m.name!r} has no primary key; its "
                                            "changes are keyed by it (add one)")
                self.conn.execute(sql.SQL(
                    "CREATE OR REPLACE TRIGGER runner_capture AFTER INSERT OR UPDATE OR DELETE ON {} "
                    "FOR EACH ROW EXECUTE FUNCTION runner_capture({})").format(
                        sql.Identifier(row[0], row[1]), sql.SQL(", ").join(sql.Literal(k) for k in keys)))
            self._read_to = self._start()
        except psycopg.Error as exc:
            self.close()
            raise SourceUnavailable(f"postgres: {exc}".strip()) from None
        except SourceUnavailable:
            self.close()
            raise

    def _start(self) -> int:
        """The stored checkpoint; the first time, StartingPosition's place, stored at once so
        that LATEST means "from when the mapping was created", not from each restart."""
        stored = self.store.checkpoint(self.m.uuid, PARTITION)
        if stored is not None:
            return int(stored)
        if self.m.starting_position == "TRIM_HORIZON":
            pos = 0
        elif self.m.starting_position == "LATEST":
            pos = self.conn.execute("SELECT coalesce(max(seq), 0) FROM runner_changes").fetchone()[0]
        else:
            pos = self.conn.execute("SELECT coalesce(max(seq), 0) FROM runner_changes WHERE at < "
                                    "to_timestamp(%s)", (self.m.starting_timestamp,)).fetchone()[0]
        self.store.set_checkpoint(self.m.uuid, PARTITION, str(pos))
        return pos

    def poll(self, max_records: int, wait_s: float) -> list[Record]:
        end = time.monotonic() + wait_s
        try:
            while True:
                rows = self.conn.execute(
                    "SELECT seq, op, keys, new, old, extract(epoch FROM at) FROM runner_changes "
                    "WHERE tbl = %s AND seq > %s ORDER BY seq LIMIT %s",
                    (self.qualified, self._read_to, max_records)).fetchall()
                if rows or time.monotonic() >= end:
                    break
                time.sleep(min(POLL_INTERVAL_S, max(0.0, end - time.monotonic())))
            self._trim()
        except psycopg.Error as exc:
            raise SourceUnavailable(f"postgres: {exc}".strip()) from None
        out = []
        for seq, op, keys, new, old, at in rows:
            data = json.dumps({"keys": keys, "new": new, "old": old}).encode()
            key = json.dumps(keys, sort_keys=True)
            out.append(Record(str(seq), key, data, float(at), 1, {"op": op, "keys": keys, "new": new, "old": old}))
        if out:
            self._read_to = int(out[-1].id)
        return out

    def _trim(self) -> None:
        if time.monotonic() - self._trimmed_at > 60:
            self._trimmed_at = time.monotonic()
            self.conn.execute(f"DELETE FROM runner_changes WHERE at < now() - interval '{RETENTION}'")

    def ack(self, records: list[Record]) -> None:
        if records:
            # Batches are acknowledged whole and in order, so the last one's number is the position.
            self.store.set_checkpoint(self.m.uuid, PARTITION, str(max(int(r.id) for r in records)))

    def keep_alive(self, records: list[Record]) -> None:
        pass

    def dead_letter(self, target: str, document: dict[str, Any]) -> None:
        try:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                                          "record jsonb NOT NULL, created_at timestamptz NOT NULL "
                                          "DEFAULT now())").format(sql.Identifier(*target.split(".", 1))))
                self.conn.execute(sql.SQL("INSERT INTO {} (record) VALUES (%s)").format(
                    sql.Identifier(*target.split(".", 1))), (json.dumps(document),))
        except psycopg.Error as exc:
            raise SourceUnavailable(f"postgres: dead-letter table {target}: {exc}".strip()) from None

    def event(self, records: list[Record]) -> dict[str, Any]:
        return {"Records": [dynamodb_record(r, self.m.name) for r in records]}

    def item_id(self, record: Record) -> str:
        return record.id

    def batch_info(self, records: list[Record]) -> dict[str, Any]:
        return {"DDBStreamBatchInfo": {
            "shardId": "shardId-00000000000000000000-00000000",
            "startSequenceNumber": records[0].id,
            "endSequenceNumber": records[-1].id,
            "approximateArrivalOfFirstRecord": arrival_iso(records[0].arrival),
            "approximateArrivalOfLastRecord": arrival_iso(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": table_stream_arn(self.m.name),
        }}

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection: nothing to do about it
                pass

