"""Event source mapping operations: CreateEventSourceMapping, GetEventSourceMapping,
ListEventSourceMappings, UpdateEventSourceMapping, DeleteEventSourceMapping.

Lambda's JSON in and out through `runner/sources/lambda_shape.py` (the one translation the
gRPC edge uses too), over the server's `EventSources` manager (`runner/sources/manager.py`),
so a mapping made with boto3 or the AWS CLI is the same object `runner source` shows. As on
Lambda, create, update and delete answer 202 (the pollers pick the change up on their own),
get and list 200. A front built without the manager (an embedded HTTP front in a test)
answers these paths with ServiceUnavailable naming what is missing.
"""

from __future__ import annotations

from typing import Any

from runner.errors import ServiceUnavailable
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.pagination import page
from runner.sources.lambda_shape import mapping_from_lambda, mapping_to_lambda

P = "/2015-03-31/event-source-mappings"


def _sources(api):
    sources = getattr(api, "sources", None)
    if sources is None:
        raise ServiceUnavailable("event source mappings are served by `runner serve` (its "
                                 "EventSources manager); this HTTP front was started without it")
    return sources


def _function_filter(value: str | None) -> str | None:
    """ListEventSourceMappings' FunctionName: a name or a function ARN (qualifier ignored)."""
    if not value:
        return None
    if value.startswith("arn:"):
        parts = value.split(":")
        return parts[6] if len(parts) > 6 else value
    return value


def create(api, req: Req):
    m = _sources(api).create(**mapping_from_lambda(req.body))
    return 202, mapping_to_lambda(m)


def get(api, req: Req):
    return 200, mapping_to_lambda(_sources(api).get(req.params["UUID"]))


def update(api, req: Req):
    changes = mapping_from_lambda(req.body, partial=True)
    return 202, mapping_to_lambda(_sources(api).update(req.params["UUID"], **changes))


def delete(api, req: Req):
    m = _sources(api).delete(req.params["UUID"])
    doc = mapping_to_lambda(m)
    doc["State"] = "Deleting"  # as Lambda answers a delete
    return 202, doc


def list_mappings(api, req: Req):
    found = _sources(api).list(_function_filter(req.query.get("FunctionName")))
    arn = req.query.get("EventSourceArn")
    docs = [mapping_to_lambda(m) for m in found]
    if arn:
        docs = [d for d in docs if d["EventSourceArn"] == arn]
    shown, marker = page(docs, req.query, key=lambda d: d["UUID"])
    out: dict[str, Any] = {"EventSourceMappings": shown}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def register(table: OperationTable) -> None:
    table.add("POST", P, create)
    table.add("GET", P, list_mappings)
    table.add("GET", P + "/{UUID}", get)
    table.add("PUT", P + "/{UUID}", update)
    table.add("DELETE", P + "/{UUID}", delete)
