"""Event source mapping operations on the REST API: CreateEventSourceMapping,
GetEventSourceMapping, ListEventSourceMappings (FunctionName, EventSourceArn, Marker,
MaxItems), UpdateEventSourceMapping, DeleteEventSourceMapping.

Translation only, over the server's `EventSources` manager (runner/sources/manager.py), with
Lambda's JSON made and read by runner/sources/lambda_shape.py, the same as the gRPC service
(service/grpc/event_sources.py). Create, update and delete answer 202 as Lambda does. Served
when the HTTP front is given the manager (`runner serve` does); without one these paths answer
UnknownOperationException like any operation not served here.
"""

from __future__ import annotations

from typing import Any

from runner.errors import UnknownOperation
from runner.service.http.invoke_api import split_function_name
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.pagination import page

E = "/2015-03-31/event-source-mappings"


def _sources(api, req: Req):
    if api.sources is None:
        raise UnknownOperation(req.method, E + " (no event sources on this server)")
    return api.sources


def create_mapping(api, req: Req):
    from runner.sources.lambda_shape import mapping_from_lambda, mapping_to_lambda

    sources = _sources(api, req)
    return 202, mapping_to_lambda(sources.create(**mapping_from_lambda(req.body)))


def get_mapping(api, req: Req):
    from runner.sources.lambda_shape import mapping_to_lambda

    return 200, mapping_to_lambda(_sources(api, req).get(req.params["UUID"]))


def list_mappings(api, req: Req):
    from runner.sources.lambda_shape import mapping_to_lambda

    sources = _sources(api, req)
    fn = req.query.get("FunctionName")
    name = split_function_name(fn, None)[0] if fn else None
    docs = [mapping_to_lambda(m) for m in sources.list(name)]
    arn = req.query.get("EventSourceArn")
    if arn:
        docs = [d for d in docs if d["EventSourceArn"] == arn]
    shown, marker = page(docs, req.query, key=lambda d: d["UUID"])
    out: dict[str, Any] = {"EventSourceMappings": shown}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def update_mapping(api, req: Req):
    from runner.sources.lambda_shape import mapping_from_lambda, mapping_to_lambda

    sources = _sources(api, req)
    changes = mapping_from_lambda(req.body, partial=True)
    return 202, mapping_to_lambda(sources.update(req.params["UUID"], **changes))


def delete_mapping(api, req: Req):
    from runner.sources.lambda_shape import mapping_to_lambda

    doc = mapping_to_lambda(_sources(api, req).delete(req.params["UUID"]))
    doc["State"] = "Deleting"
    return 202, doc


def register(table: OperationTable) -> None:
    table.add("POST", E, create_mapping)
    table.add("GET", E, list_mappings)
    table.add("GET", E + "/{UUID}", get_mapping)
    table.add("PUT", E + "/{UUID}", update_mapping)
    table.add("DELETE", E + "/{UUID}", delete_mapping)
