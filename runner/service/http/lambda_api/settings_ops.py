"""Per-function settings kept in the function's configuration: reserved concurrency,
provisioned concurrency, the asynchronous-invocation config; and GetAccountSettings.

Each Put is a configuration update (a new revision of $LATEST, as a deploy without code), so
it has the deploy's semantics: atomic, ResourceConflict during another update. Differences
from Lambda, stated in docs/lambda-compatibility.md: every function here has a concurrency
limit (10 unless set), so GetFunctionConcurrency always answers a number and
DeleteFunctionConcurrency restores the default (and clears `concurrency_reserved`, which a Put
sets: in a cluster a reserved function runs at its home node only, decision 079); provisioned concurrency is a property of the
function, not of one version or alias (the Qualifier must name $LATEST or be left out, else
the setting would silently apply to another version than asked).
"""

from __future__ import annotations

from runner.errors import InvalidParameter, ResourceNotFound
from runner.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DLQ,
    LATEST,
    MAX_CONCURRENCY,
    function_arn,
)
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.functions import function_name
from runner.service.http.lambda_api.shapes import lambda_time

ARN_FN = ":function:"


def _int(req: Req, key: str) -> int:
    v = req.body.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidParameter(key, "is required and must be an integer")
    return v


def put_concurrency(api, req: Req):
    name, _ = function_name(req)
    n = _int(req, "ReservedConcurrentExecutions")
    if n == 0:
        raise InvalidParameter("ReservedConcurrentExecutions", "0 (throttle everything) is not "
                               "supported; delete the function or pick 1 or more")
    api.runner.deploy(name, None, concurrency=n)
    return 200, {"ReservedConcurrentExecutions": n}


def get_concurrency(api, req: Req):
    name, _ = function_name(req)
    return 200, {"ReservedConcurrentExecutions": api.runner.get(name).config.concurrency}


def delete_concurrency(api, req: Req):
    name, _ = function_name(req)
    api.runner.deploy(name, None, concurrency=DEFAULT_CONCURRENCY, concurrency_reserved=False)
    return 204, None


def _function_level(req: Req) -> str:
    name, qualifier = function_name(req)
    if qualifier not in (None, "", LATEST):
        raise InvalidParameter("Qualifier", "provisioned concurrency applies to the whole "
                               "function here; pass $LATEST (docs/lambda-compatibility.md)")
    return name


def _provisioned_doc(version) -> dict:
    n = version.config.provisioned
    return {"RequestedProvisionedConcurrentExecutions": n,
            "AvailableProvisionedConcurrentExecutions": n,
            "AllocatedProvisionedConcurrentExecutions": n,
            "Status": "READY", "LastModified": lambda_time(version.created_at)}


def put_provisioned(api, req: Req):
    name = _function_level(req)
    n = _int(req, "ProvisionedConcurrentExecutions")
    version = api.runner.deploy(name, None, provisioned=n)
    return 202, _provisioned_doc(version)


def get_provisioned(api, req: Req):
    if req.query.get("List") == "ALL":  # ListProvisionedConcurrencyConfigs: the same path
        version = api.runner.get(function_name(req)[0])
        docs = [{"FunctionArn": function_arn(version.name, LATEST), **_provisioned_doc(version)}] \
            if version.config.provisioned else []
        return 200, {"ProvisionedConcurrencyConfigs": docs}
    version = api.runner.get(_function_level(req))
    if not version.config.provisioned:
        raise ResourceNotFound(f"No Provisioned Concurrency Config found for function: "
                               f"{version.name}")
    return 200, _provisioned_doc(version)


def delete_provisioned(api, req: Req):
    api.runner.deploy(_function_level(req), None, provisioned=0)
    return 204, None


def _destination(arn: str | None) -> str | None:
    """A destination ARN (or a function name) as the configuration holds it."""
    if arn is None:
        return ""
    if ARN_FN in arn:
        return arn.split(ARN_FN, 1)[1].split(":")[0]
    if arn == DEFAULT_DLQ or ":" not in arn:
        return arn
    raise InvalidParameter("DestinationConfig", f"{arn!r}: only Lambda functions (and 'dlq', "
                           "the runner's dead-letter store) are destinations here")


def _event_doc(version) -> dict:
    c = version.config
    dest = {}
    for key, target in (("OnSuccess", c.on_success), ("OnFailure", c.on_failure)):
        if target:
            dest[key] = {"Destination": target if target == DEFAULT_DLQ
                         else api_arn(target)}
    return {"FunctionArn": api_arn(version.name), "MaximumRetryAttempts": c.max_retries,
            "MaximumEventAgeInSeconds": c.max_event_age_s,
            "LastModified": version.created_at, "DestinationConfig": dest}


def api_arn(name: str) -> str:
    return function_arn(name)


def put_event_invoke_config(api, req: Req):
    """Put replaces the whole config (left-out fields go back to the defaults); Update (POST)
    changes only what is given, as on Lambda."""
    name, _ = function_name(req)
    b = req.body
    replace = req.method == "PUT"
    changes = {}
    if "MaximumRetryAttempts" in b or replace:
        changes["max_retries"] = b.get("MaximumRetryAttempts", 2)
    if "MaximumEventAgeInSeconds" in b or replace:
        changes["max_event_age_s"] = b.get("MaximumEventAgeInSeconds", 21600)
    dest = b.get("DestinationConfig")
    if dest is not None or replace:
        dest = dest or {}
        changes["on_success"] = _destination((dest.get("OnSuccess") or {}).get("Destination"))
        changes["on_failure"] = _destination((dest.get("OnFailure") or {}).get("Destination"))
    version = api.runner.deploy(name, None, **changes)
    return 200, _event_doc(version)


def get_event_invoke_config(api, req: Req):
    name, _ = function_name(req)
    return 200, _event_doc(api.runner.get(name))


def delete_event_invoke_config(api, req: Req):
    name, _ = function_name(req)
    api.runner.deploy(name, None, max_retries=2, max_event_age_s=21600, on_success="",
                      on_failure="")
    return 204, None


def get_account_settings(api, req: Req):
    functions = api.runner.list()
    code_size = sum(v.code_size for v in functions)
    return 200, {
        "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                         "CodeSizeZipped": 52428800,
                         "ConcurrentExecutions": MAX_CONCURRENCY,
                         "UnreservedConcurrentExecutions": max(
                             0, MAX_CONCURRENCY - sum(v.config.concurrency for v in functions))},
        "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": len(functions)},
    }


def register(table: OperationTable) -> None:
    c = "/2017-10-31/functions/{FunctionName}/concurrency"
    table.add("PUT", c, put_concurrency)
    table.add("DELETE", c, delete_concurrency)
    table.add("GET", "/2019-09-30/functions/{FunctionName}/concurrency", get_concurrency)
    p = "/2019-09-30/functions/{FunctionName}/provisioned-concurrency"
    table.add("PUT", p, put_provisioned)
    table.add("GET", p, get_provisioned)
    table.add("DELETE", p, delete_provisioned)
    e = "/2019-09-25/functions/{FunctionName}/event-invoke-config"
    table.add("PUT", e, put_event_invoke_config)
    table.add("POST", e, put_event_invoke_config)
    table.add("GET", e, get_event_invoke_config)
    table.add("DELETE", e, delete_event_invoke_config)
    table.add("GET", "/2016-08-19/account-settings", get_account_settings)
