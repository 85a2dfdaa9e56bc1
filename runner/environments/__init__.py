"""Execution environments: the host side of every runtime.

Holds the layer's protocol (`base.py`: `ExecutionEnvironment`, `Backend`), the registry of
runtimes (`backends.py`), a fake backend for tests of the layers above (`fake.py`), and one
package per way of running guest code: `process/` (the generic subprocess environment, shared
by Python and Node.js), `python/`, `node/`, `wasm/`. Each runtime package keeps the code that
runs *inside* its guests in a `guest/` folder beside the host side.

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.confinement`.
"""
