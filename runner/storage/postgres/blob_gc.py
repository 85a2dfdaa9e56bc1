"""Collecting shared code blobs no revision or layer version names any more (decision 083).

A package's blob (storage/blobs.py: the `code_blobs` table or an S3 bucket) outlives the
function that uploaded it only as garbage: deleting a function records its revisions' digests
in `blob_garbage` (in the delete's transaction, postgres/functions.py), and the cluster's
janitor (state.Heartbeat, one node at a time) calls `collect()` now and then, which deletes
those blobs that nothing names again by then. No listing of the store is needed, so S3 and
PostgreSQL are collected the same way.

Why it never deletes a blob someone needs (the invariant):
* a blob is deleted only while no revision (of any function) and no layer version (deleted
  or not: a deleted layer version stays mountable by the functions that use it) names it, as
  read inside the collector's transaction;
* every write that puts a blob and then names it (a deploy with code, a layer publish) holds
  the shared advisory lock BLOB_WRITERS for its whole transaction, put and commit included, and
  the collector runs only when it gets that lock exclusively (`pg_try_advisory_xact_lock`),
  so no writer is between its put and its commit while the collector reads the references
  and deletes: a writer that started before is committed (its name is read), one that starts
  after waits, and then puts the blob again if it was deleted;
* a blob whose delete succeeded but whose garbage row was not removed (a crash) is deleted
  again next time: deletes are idempotent.
What it leaves: a blob put by a deploy whose transaction then failed is named by nothing and
never recorded as garbage (rare; content-addressed, so a retry reuses it).
"""

from __future__ import annotations

import logging

from runner.storage.blobs import BlobStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_garbage (
    sha256      TEXT PRIMARY KEY,
    since       DOUBLE PRECISION NOT NULL  -- when the last function naming it was deleted
);
"""

# Held shared by blob writers for their transaction, exclusively by the collector.
BLOB_WRITERS = "hashtext('blob-writers')"
HOLD_AS_WRITER = f"SELECT pg_advisory_xact_lock_shared({BLOB_WRITERS})"
_TRY_AS_COLLECTOR = f"SELECT pg_try_advisory_xact_lock({BLOB_WRITERS}) AS ok"
BATCH = 100  # blobs per pass: writers wait for the pass, so it stays short (S3: one DELETE each)
COLLECT_EVERY_S = 60.0  # how often the janitor collects


def record_garbage(conn, digests, now: float) -> None:
    """In the transaction of a delete: `digests` lost a user. Whether another revision still
    names one is decided at collection (a later deploy may name it again anyway)."""
    for digest in set(digests):
        conn.execute("INSERT INTO blob_garbage (sha256, since) VALUES (%s, %s) "
                     "ON CONFLICT (sha256) DO UPDATE SET since = excluded.since", (digest, now))


def collect(db, blobs: BlobStore, batch: int = BATCH) -> int | None:
    """Delete up to `batch` garbage blobs nothing names; how many, or None when a blob writer
    holds the lock (tried again at the next pass)."""
    with db.transaction() as conn:
        if not conn.execute(_TRY_AS_COLLECTOR).fetchone()["ok"]:
            return None
        named = "EXISTS (SELECT 1 FROM revisions r WHERE r.code_sha256 = g.sha256)"
        if conn.execute("SELECT to_regclass('layer_versions') IS NOT NULL AS t").fetchone()["t"]:
            named += " OR EXISTS (SELECT 1 FROM layer_versions l WHERE l.code_sha256 = g.sha256)"
        # Named again (deployed anew): not garbage any more.
        conn.execute(f"DELETE FROM blob_garbage g WHERE {named}")
        doomed = [r["sha256"] for r in conn.execute(
            "SELECT sha256 FROM blob_garbage ORDER BY since LIMIT %s", (batch,))]
        for digest in doomed:
            blobs.delete(digest)
        conn.execute("DELETE FROM blob_garbage WHERE sha256 = ANY(%s)", (doomed,))
    if doomed:
        log.info("deleted %d code blob(s) no function or layer names any more", len(doomed))
    return len(doomed)
