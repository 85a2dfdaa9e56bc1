"""The Python runtime: `runtime.py` (`PythonRuntime`: the interpreter, its flags, the guest
scripts), `zygote.py` (the default backend: environments forked from a per-version zygote),
`zygote_process.py` (the zygote process as the host sees it: start, init, fork, reap),
`forked.py` (its forked children as the host sees them: pids, waits, kills). Without
the zygote (RUNNER_PYTHON_ZYGOTE=off) a `process.ProcessBackend` runs a fresh interpreter per
environment. `guest/` holds what runs inside the sandbox (stdlib only).

May import: `runner.environments.base`, `runner.environments.process`, `runner.confinement`,
`runner.model`, `runner.errors`, `runner.settings`.
"""
