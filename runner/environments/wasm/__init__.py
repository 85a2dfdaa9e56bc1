"""The WebAssembly runtime: wasmtime instances inside the server process.

`backend.py` (the `Backend`: engine, linker, per-version preparation), `environment.py` (one
environment), `abi.py` (the guest ABI: module shapes, traps), `call.py` (a guest call under its
deadline), `cache.py` (compiled modules on disk), `snapshot.py` (pre-initialised memory),
`ticker.py` (epoch deadlines), `guest_io.py` (stdio files), `cpu.py` (the CPU share of a
guest call).

May import: `runner.environments.base`, `runner.confinement`, `runner.model`, `runner.errors`,
`runner.settings`.
"""
