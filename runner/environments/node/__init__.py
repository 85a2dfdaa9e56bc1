"""The Node.js runtime: one `node` process per environment (`runtime.py`), with optional V8
startup snapshots (`snapshot.py`). `guest/` holds the bootstrap that runs inside the sandbox
(plain Node, no npm packages).

May import: `runner.environments.base`, `runner.environments.process`, `runner.confinement`,
`runner.model`, `runner.errors`, `runner.settings`.
"""
