"""The Lambda REST management API (2015-03-31 and its later dates) on the HTTP front, so that
boto3, the AWS CLI and other SDKs manage functions here unchanged (issue 20).

Modules: dispatch (the operation table, path ownership, errors), functions, aliases, layers,
settings_ops (concurrency, provisioned concurrency, async-invoke config, account settings),
streaming (InvokeWithResponseStream, streamed as written), tags, event_source_mappings (over the server's
EventSources, when it has one), shapes (Lambda's JSON documents), pagination. Invoke itself
stays in ../invoke_api.py.
"""

from __future__ import annotations

from runner.errors import InvalidParameter
from runner.service.http.lambda_api import (
    aliases,
    event_source_mappings,
    functions,
    layers,
    settings_ops,
    streaming,
    tags,
)
from runner.service.http.lambda_api.dispatch import LambdaApiHandler, OperationTable, owns
from runner.storage.layers import parse_arn

__all__ = ["LambdaApi", "owns"]


def default_table() -> OperationTable:
    table = OperationTable()
    for module in (functions, aliases, layers, settings_ops, streaming, tags,
                   event_source_mappings):
        module.register(table)
    return table


class LambdaApi:
    """What operations see as `api`: the Runner and two helpers the shapes need."""

    def __init__(self, runner, executor, invoke, table: OperationTable | None = None,
                 invocations=None, sources=None) -> None:
        self.runner = runner
        # The event sources' manager (runner/sources/manager.py) for the mapping operations;
        # None: those paths answer UnknownOperationException.
        self.sources = sources
        # The synchronous-invocation ceiling shared with Invoke (service/admission.py), for
        # InvokeWithResponseStream; None: no ceiling.
        self.invocations = invocations
        self.handler = LambdaApiHandler(self, table or default_table(), executor, invoke)

    async def handle(self, request):
        return await self.handler.handle(request)

    def check_layers(self, arns) -> tuple[str, ...]:
        if not isinstance(arns, list):
            raise InvalidParameter("Layers", "must be a list of layer version ARNs")
        return self.runner.check_layers(arns)

    def layer_size(self, arn: str) -> int:
        try:
            return self.runner.layers.get_any(*parse_arn(arn)).code_size
        except Exception:
            return 0
