"""A self-hosted, Lambda-style function runner.

The embedding API::

    from runner import Runner
    with Runner(data_dir) as r:
        r.deploy("hello", "guests/python/hello", runtime="python", handler="app.handler")
        print(r.invoke("hello", b'{"name": "ada"}').payload)

Layers, bottom up: `runner.sandbox` (execution environments) -> `runner.pool` (warm pools) ->
`runner.registry` (functions, versions, code, logs) -> `runner.api` / `runner.service` (gRPC)
-> `runner.cli`. See docs/architecture.md.
"""

from runner import errors
from runner.api import Runner
from runner.model import FunctionConfig, FunctionVersion, InvocationResult, Report

__all__ = ["Runner", "FunctionConfig", "FunctionVersion", "InvocationResult", "Report", "errors"]
__version__ = "0.1.0"
