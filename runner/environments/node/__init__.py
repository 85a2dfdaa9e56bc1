"""The Node.js runtime: one `node` process per environment (`runtime.py`), started and bounded
as `process_policy.py` says, for a handler module `handler.py` locates; optionally from a V8
startup snapshot (`snapshot.py` keeps the blobs, `snapshot_build.py` builds one). `guest/` holds
the bootstrap that runs inside the sandbox (plain Node, no npm packages).

Imports go one way: runtime -> snapshot -> snapshot_build -> handler, process_policy.

May import: `runner.environments.base`, `runner.environments.process`, `runner.confinement`,
`runner.model`, `runner.errors`, `runner.settings`.
"""
