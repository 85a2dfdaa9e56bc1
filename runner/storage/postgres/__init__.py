"""The PostgreSQL implementations of the stores, for a cluster of nodes sharing state
(`runner serve --state postgresql://...`; docs/cluster.md). SQLite stays the default.

* `connection.py`: the pool every store here uses, and the schema applied under a lock.
* `functions.py`: the registry (functions, revisions, versions, aliases).
* `blobs.py`: code packages and layer contents in `code_blobs` (the default blob store;
  `storage/s3_blobs.py` with --code-store); `layers.py`: layers (decision 077).
* `aliases.py`, `roles.py`: the alias and execution role stores, in the registry's database
  and through its pool; their writes bump its generation row (decision 076).
* `events.py`: the async queue (FOR UPDATE SKIP LOCKED leases tied to node liveness) and
  dead letters.
* `routes.py`: HTTP routes.
* `nodes.py`: cluster membership (heartbeats) and singleton leases.
* `schedules.py`, `mappings.py`: schedules and event source mappings.
* `push.py`: object-store triggers, topics and subscriptions (decision 078).
* `metric_series.py`: the dashboard's minute series, rows per node summed on read (078).
* `workflows.py`: state machines and executions, a lease per RUNNING execution (decision 070).

Adding a PostgreSQL implementation of another store (the pattern, docs/cluster.md):
1. Write `runner/storage/postgres/<store>.py` with the same methods as the SQLite store, its
   own `SCHEMA` (CREATE ... IF NOT EXISTS; applied by `Database(url, SCHEMA)` under an
   advisory lock) and `%s` parameters.
2. Anything a node caches in memory must notice other nodes' writes: bump a generation row in
   the write's transaction and compare it at most once a second (functions.py, routes.py).
3. Work only one node may do at a time: claim rows with FOR UPDATE SKIP LOCKED and stamp them
   with the node id, treating rows of dead nodes as free (events.py), or hold a named lease
   (nodes.py `acquire`).
4. Open it in `runner/storage/state.py` and run its contract tests on both backends with the
   `state` fixture of tests/state_fixtures.py.

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.storage`.
"""
