"""The WebAssembly runtime: wasmtime instances inside the server process.

`backend.py` (the `Backend`: per-version bookkeeping, environments, close), `engine.py`
(`SharedEngine`: engine, linker, cache, ticker, CPU shares and the store factory, shared by
everything below the backend), `prepare.py` (`Prepared`: checking, compiling and linking a
version), `environment.py` (one environment), `abi.py` (the guest ABI: module shapes, traps),
`call.py` (a guest call under its deadline), `cache.py` (compiled modules on disk),
`snapshot.py` (pre-initialised memory), `ticker.py` (epoch deadlines), `guest_io.py` (stdio
files), `cpu.py` (the CPU share of a guest call).

Imports go one way: backend -> environment -> prepare -> snapshot -> engine -> the rest; only
backend.py knows the backend.

May import: `runner.environments.base`, `runner.confinement`, `runner.model`, `runner.errors`,
`runner.settings`.
"""
