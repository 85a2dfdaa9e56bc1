"""The Python runtime: a per-version zygote that forks environments (`zygote.py`,
`zygote_process.py`), or a fresh interpreter per environment (`runtime.py`). `guest/` holds
what runs inside the sandbox (stdlib only).

May import: `runner.environments.base`, `runner.environments.process`, `runner.confinement`,
`runner.model`, `runner.errors`, `runner.settings`.
"""
