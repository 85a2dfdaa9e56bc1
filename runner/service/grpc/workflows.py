"""The Workflows gRPC service (proto/workflows.proto): the Step Functions operations with
JSON bodies, served by the same runner/workflows/api.py as the HTTP API."""

from __future__ import annotations

import json

from runner.errors import InvalidParameter
from runner.service.grpc.status import abort
from runner.service.proto import workflows_pb2 as wpb
from runner.service.proto import workflows_pb2_grpc as wpb_grpc
from runner.workflows import api

SERVICE = wpb.DESCRIPTOR.services_by_name["Workflows"].full_name


def _method(operation: str):
    def handler(self, request, context):
        try:
            try:
                body = json.loads(request.body) if request.body else {}
            except ValueError:
                raise InvalidParameter("body", "is not JSON") from None
            return wpb.JsonResponse(body=json.dumps(api.call(self.engine, operation, body)))
        except Exception as exc:
            abort(context, exc)
    handler.__name__ = operation
    return handler


class WorkflowsServicer(wpb_grpc.WorkflowsServicer):
    def __init__(self, engine) -> None:
        self.engine = engine


for _op in api.OPERATIONS:
    setattr(WorkflowsServicer, _op, _method(_op))


def add_to_server(engine, server) -> str:
    """Register the service; returns its full name (for health and reflection)."""
    wpb_grpc.add_WorkflowsServicer_to_server(WorkflowsServicer(engine), server)
    return SERVICE
