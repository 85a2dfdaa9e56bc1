"""A self-hosted, Lambda-style function runner.

The embedding API::

    from runner import Runner
    with Runner(data_dir) as r:
        r.deploy("hello", "guests/python/hello", runtime="python", handler="app.handler")
        print(r.invoke("hello", b'{"name": "ada"}').payload)

Layers, bottom up (docs/architecture.md): `runner.confinement` (cgroups, rlimits, namespaces)
-> `runner.environments` (execution environments, one package per runtime) -> `runner.pool`
(warm pools) -> `runner.storage` (functions, versions, code, logs, routes, events) ->
`runner.invocation` (the invoke path, the async dispatcher) -> `runner.service` (gRPC, HTTP)
-> `runner.cli`. `runner.model`, `runner.errors` and `runner.settings` sit under all of them.
The edges call `Runner` only; its stores stay attributes for tests and tools.
"""

from runner import errors
from runner.invocation_record import InvocationResult, Report
from runner.model import FunctionConfig, FunctionVersion

__all__ = ["Runner", "FunctionConfig", "FunctionVersion", "InvocationResult", "Report", "errors"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # `Runner` is loaded on first use: it brings every runtime (wasmtime among them, ~140 ms),
    # which the CLI's client commands, importing this package on their way, never need.
    if name == "Runner":
        from runner.invocation.runner import Runner

        return Runner
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
