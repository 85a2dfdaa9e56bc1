"""Tag operations: TagResource, ListTags, UntagResource (on functions; the resource is the
function's ARN, unqualified, as Lambda requires)."""

from __future__ import annotations

from runner.errors import InvalidParameter
from runner.service.http.invoke_api import split_function_name
from runner.service.http.lambda_api.dispatch import OperationTable, Req

T = "/2017-03-31/tags/{Resource}"


def _function(req: Req) -> str:
    arn = req.params["Resource"]
    if ":function:" not in arn:
        raise InvalidParameter("Resource", f"{arn!r} is not a function ARN; only functions "
                               "take tags here")
    name, qualifier = split_function_name(arn, None)
    if qualifier:
        raise InvalidParameter("Resource", "tags belong to the function: use its unqualified ARN")
    return name


def tag_resource(api, req: Req):
    api.runner.tag_function(_function(req), req.body.get("Tags") or {})
    return 204, None


def list_tags(api, req: Req):
    return 200, {"Tags": api.runner.function_tags(_function(req))}


def untag_resource(api, req: Req):
    api.runner.untag_function(_function(req), req.multi_query.get("tagKeys", []))
    return 204, None


def register(table: OperationTable) -> None:
    table.add("POST", T, tag_resource)
    table.add("GET", T, list_tags)
    table.add("DELETE", T, untag_resource)
