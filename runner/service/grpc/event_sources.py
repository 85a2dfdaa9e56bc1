"""The EventSources gRPC service (proto/event_sources.proto): mappings as Lambda's JSON over
an `EventSources` manager. Translation only; errors become statuses through status.py."""

from __future__ import annotations

import json
from typing import Any

import grpc

from runner.errors import InvalidParameter
from runner.service.grpc.status import abort
from runner.service.proto import event_sources_pb2 as pb
from runner.service.proto import event_sources_pb2_grpc as pb_grpc
from runner.sources.lambda_shape import mapping_from_lambda, mapping_to_lambda
from runner.sources.manager import EventSources

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EventSources"].full_name


def _doc(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text or "{}")
    except ValueError:
        raise InvalidParameter("lambda_json", "is not JSON; send Lambda's event source mapping "
                                              "document") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("lambda_json", "must be a JSON object")
    return doc


def _mapping(m, status: dict | None = None) -> pb.EventSourceMapping:
    out = pb.EventSourceMapping(uuid=m.uuid, lambda_json=json.dumps(mapping_to_lambda(m)))
    if status is not None:
        out.status_json = json.dumps({"running": status["running"], "stats": status["stats"]})
    return out


class EventSourcesServicer(pb_grpc.EventSourcesServicer):
    def __init__(self, sources: EventSources) -> None:
        self.sources = sources

    def Create(self, request, context):
        try:
            return _mapping(self.sources.create(**mapping_from_lambda(_doc(request.lambda_json))))
        except Exception as exc:
            abort(context, exc)

    def Get(self, request, context):
        try:
            status = self.sources.status(request.uuid)
            return _mapping(status["mapping"], status)
        except Exception as exc:
            abort(context, exc)

    def List(self, request, context):
        try:
            found = self.sources.list(request.function or None)
            return pb.ListMappingsResponse(mappings=[_mapping(m) for m in found])
        except Exception as exc:
            abort(context, exc)

    def Update(self, request, context):
        try:
            changes = mapping_from_lambda(_doc(request.lambda_json), partial=True)
            return _mapping(self.sources.update(request.uuid, **changes))
        except Exception as exc:
            abort(context, exc)

    def Delete(self, request, context):
        try:
            return _mapping(self.sources.delete(request.uuid))
        except Exception as exc:
            abort(context, exc)


def add_to_server(server: grpc.Server, sources: EventSources) -> None:
    """Register the service (before server.start()), and mark it serving in health checks."""
    pb_grpc.add_EventSourcesServicer_to_server(EventSourcesServicer(sources), server)
    health = getattr(server, "health_servicer", None)
    if health is not None:
        from grpc_health.v1 import health_pb2

        health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
