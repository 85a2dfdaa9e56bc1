"""Alias operations: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.

Weighted routing is Lambda's `RoutingConfig.AdditionalVersionWeights`; the Runner picks the
version of each invocation (Runner.resolve_for_invoke) and reports it as ExecutedVersion.
"""

from __future__ import annotations

from typing import Any

from runner.errors import InvalidParameter
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.functions import function_name
from runner.service.http.lambda_api.pagination import page
from runner.service.http.lambda_api.shapes import alias_configuration

A = "/2015-03-31/functions/{FunctionName}/aliases"


def _weights(req: Req) -> dict[str, float] | None:
    if "RoutingConfig" not in req.body:
        return None
    routing = req.body.get("RoutingConfig") or {}
    weights = routing.get("AdditionalVersionWeights") or {}
    if not isinstance(weights, dict):
        raise InvalidParameter("AdditionalVersionWeights", "must be a map of version to weight")
    return weights


def create_alias(api, req: Req):
    name, _ = function_name(req)
    alias, version = req.str("Name"), req.str("FunctionVersion")
    if not alias or not version:
        raise InvalidParameter("Name" if not alias else "FunctionVersion", "is required")
    a = api.runner.create_alias(name, alias, version, weights=_weights(req),
                                description=req.str("Description", "") or "")
    return 201, alias_configuration(a)


def get_alias(api, req: Req):
    name, _ = function_name(req)
    return 200, alias_configuration(api.runner.get_alias(name, req.params["Name"]))


def update_alias(api, req: Req):
    name, _ = function_name(req)
    api.runner.get(name)
    a = api.runner.update_alias(name, req.params["Name"], version=req.str("FunctionVersion"),
                                weights=_weights(req), description=req.str("Description"),
                                revision_id=req.str("RevisionId"))
    return 200, alias_configuration(a)


def delete_alias(api, req: Req):
    name, _ = function_name(req)
    api.runner.delete_alias(name, req.params["Name"])
    return 204, None


def list_aliases(api, req: Req):
    name, _ = function_name(req)
    items = api.runner.list_aliases(name, req.query.get("FunctionVersion"))
    shown, marker = page(items, req.query, key=lambda a: a.name)
    out: dict[str, Any] = {"Aliases": [alias_configuration(a) for a in shown]}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def register(table: OperationTable) -> None:
    table.add("POST", A, create_alias)
    table.add("GET", A, list_aliases)
    table.add("GET", A + "/{Name}", get_alias)
    table.add("PUT", A + "/{Name}", update_alias)
    table.add("DELETE", A + "/{Name}", delete_alias)
