"""Function operations: Create, Get, GetConfiguration, List, UpdateCode, UpdateConfiguration,
Delete, PublishVersion, ListVersionsByFunction.

Each maps onto one Runner call; what Lambda does asynchronously (a create, an update) is done
when the call returns here, so the response already says `State: Active` and
`LastUpdateStatus: Successful` and boto3's waiters pass at their first poll.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from runner.errors import InvalidParameter
from runner.model import LAMBDA_RUNTIME_IDS, LATEST, normalize_runtime
from runner.service.http.invoke_api import split_function_name
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.pagination import page
from runner.service.http.lambda_api.shapes import code_sha256_b64, configuration

F = "/2015-03-31/functions"


def function_name(req: Req) -> tuple[str, str | None]:
    """(name, qualifier) of the FunctionName path parameter (a name, name:qualifier or ARN)
    and ?Qualifier=."""
    return split_function_name(req.params["FunctionName"], req.query.get("Qualifier"))


def describe(api, version) -> dict[str, Any]:
    return configuration(version, api.runner.revision_id(version), api.layer_size)


def _zip(req: Req, field: str = "ZipFile") -> bytes:
    raw = req.body.get(field)
    if raw is None:
        for other in ("S3Bucket", "ImageUri"):
            if req.body.get(other) is not None:
                raise InvalidParameter(other, "code from S3 or a container image is not "
                                       "supported here; send the zip as ZipFile")
        raise InvalidParameter("Code", "ZipFile is required (the zip's bytes, base64 in JSON)")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, TypeError):
        raise InvalidParameter(field, "is not base64; send the zip's bytes base64-encoded") from None


def _settings(api, req: Req) -> dict[str, Any]:
    """Runner.deploy settings from a Create/UpdateFunctionConfiguration body."""
    b = req.body
    s: dict[str, Any] = {}
    if "Timeout" in b:
        s["timeout_s"] = float(b["Timeout"]) if isinstance(b["Timeout"], int) else b["Timeout"]
    if "MemorySize" in b:
        s["memory_mb"] = b["MemorySize"]
    if "Description" in b:
        s["description"] = b["Description"]
    if "Role" in b:
        s["role"] = b["Role"]
    if "Layers" in b:
        s["layers"] = tuple(api.check_layers(b["Layers"] or []))
    if "EphemeralStorage" in b:
        s["ephemeral_storage_mb"] = (b["EphemeralStorage"] or {}).get("Size")
    if "Environment" in b:
        s["environment"] = dict((b["Environment"] or {}).get("Variables") or {})
    runtime = req.str("Runtime")
    if runtime is not None:
        s["runtime"] = runtime
        normalize_runtime(runtime)  # InvalidParameter names the field for an unknown one
        s["runtime_id"] = runtime.lower() if runtime.lower() in LAMBDA_RUNTIME_IDS else ""
    if req.str("Handler") is not None:
        s["handler"] = req.body["Handler"]
    for unsupported in ("VpcConfig", "DeadLetterConfig", "KMSKeyArn", "FileSystemConfigs",
                        "ImageConfig", "CodeSigningConfigArn", "SnapStart"):
        if b.get(unsupported):
            raise InvalidParameter(unsupported, "is not supported by this runner; leave it out "
                                   "(docs/lambda-compatibility.md)")
    return s


def create_function(api, req: Req):
    name = req.str("FunctionName")
    if not name:
        raise InvalidParameter("FunctionName", "is required")
    name, _ = split_function_name(name, None)
    if (req.body.get("PackageType") or "Zip") != "Zip":
        raise InvalidParameter("PackageType", "only Zip packages are supported")
    code = _zip(Req(req.method, {}, {}, req.body.get("Code") or {}))
    settings = _settings(api, req)
    if "runtime" not in settings or "handler" not in settings:
        raise InvalidParameter("Runtime" if "runtime" not in settings else "Handler",
                               "is required when creating a function")
    version = api.runner.deploy(name, code, must_create=True, **settings)
    if req.body.get("Publish"):
        version = api.runner.publish(name)
    return 201, describe(api, version)


def get_function(api, req: Req):
    name, qualifier = function_name(req)
    version = api.runner.get(name, qualifier)
    # Code.Location would be a download URL; the runner keeps code extracted, not as the zip.
    return 200, {"Configuration": describe(api, version),
                 "Code": {"RepositoryType": "S3", "Location": ""},
                 "Concurrency": {"ReservedConcurrentExecutions": version.config.concurrency}}


def get_function_configuration(api, req: Req):
    name, qualifier = function_name(req)
    return 200, describe(api, api.runner.get(name, qualifier))


def list_functions(api, req: Req):
    all_versions = req.query.get("FunctionVersion") == "ALL"
    items = []
    for latest in api.runner.list():
        items.extend(api.runner.versions(latest.name) if all_versions else [latest])
    shown, marker = page(items, req.query, key=lambda v: f"{v.name}:{v.version}")
    out: dict[str, Any] = {"Functions": [describe(api, v) for v in shown]}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def update_function_code(api, req: Req):
    name, _ = function_name(req)
    code = _zip(req)
    if req.body.get("DryRun"):
        api.runner.get(name)
        return 200, describe(api, api.runner.get(name))
    version = api.runner.deploy(name, code, revision_id=req.str("RevisionId"))
    if req.body.get("Publish"):
        version = api.runner.publish(name)
    return 200, describe(api, version)


def update_function_configuration(api, req: Req):
    name, _ = function_name(req)
    api.runner.get(name)  # ResourceNotFound before any validation of the settings
    settings = _settings(api, req)
    version = api.runner.deploy(name, None, revision_id=req.str("RevisionId"),
                                replace_environment="environment" in settings, **settings)
    return 200, describe(api, version)


def delete_function(api, req: Req):
    name, qualifier = function_name(req)
    if qualifier and qualifier != LATEST:
        api.runner.delete_version(name, qualifier)
    else:
        api.runner.delete(name)
    return 204, None


def publish_version(api, req: Req):
    name, _ = function_name(req)
    latest = api.runner.get(name)
    want = req.str("CodeSha256")
    if want and want != code_sha256_b64(latest.code_sha256):
        raise InvalidParameter("CodeSha256", f"{want!r} is not the code of $LATEST "
                               f"({code_sha256_b64(latest.code_sha256)}); it changed since read")
    version = api.runner.publish(name, revision_id=req.str("RevisionId"))
    return 201, describe(api, version)


def list_versions(api, req: Req):
    name, _ = function_name(req)
    shown, marker = page(api.runner.versions(name), req.query, key=lambda v: v.version)
    out: dict[str, Any] = {"Versions": [describe(api, v) for v in shown]}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def register(table: OperationTable) -> None:
    table.add("POST", F, create_function)
    table.add("GET", F, list_functions)
    table.add("GET", F + "/{FunctionName}", get_function)
    table.add("DELETE", F + "/{FunctionName}", delete_function)
    table.add("GET", F + "/{FunctionName}/configuration", get_function_configuration)
    table.add("PUT", F + "/{FunctionName}/configuration", update_function_configuration)
    table.add("PUT", F + "/{FunctionName}/code", update_function_code)
    table.add("POST", F + "/{FunctionName}/versions", publish_version)
    table.add("GET", F + "/{FunctionName}/versions", list_versions)
