"""Lambda's JSON shapes built from the runner's data (model.py, storage/aliases.py).

Field names and formats are the Lambda API's (botocore's service model), so that SDK code and
boto3's waiters read them unchanged: `State: Active` and `LastUpdateStatus: Successful` because
a deploy here returns only once the version is ready (its environments prepared), `CodeSha256`
as base64 of the digest (Lambda's form; the registry keeps hex), `LastModified` as
`YYYY-MM-DDThh:mm:ss.sss+0000`.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from runner.model import (
    ACCOUNT,
    LAMBDA_RUNTIME_IDS,
    LATEST,
    FunctionConfig,
    FunctionVersion,
    function_arn,
    region,
)
from runner.storage.aliases import Alias

_DEFAULT_RUNTIME_ID = {rt: rid for rid, rt in reversed(list(LAMBDA_RUNTIME_IDS.items()))}


def lambda_time(ts: float) -> str:
    ms = int((ts % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}+0000"


def code_sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def runtime_id(cfg: FunctionConfig) -> str:
    """What Lambda's `Runtime` field shows: the identifier given, else the runtime's default
    (wasm has no Lambda identifier; it shows as `provided.al2023`, Lambda's custom runtime)."""
    return cfg.runtime_id or _DEFAULT_RUNTIME_ID.get(cfg.runtime, "provided.al2023")


def configuration(v: FunctionVersion, revision_id: str, layer_size=None) -> dict[str, Any]:
    """Lambda's FunctionConfiguration of one version ($LATEST or a published one)."""
    c = v.config
    out: dict[str, Any] = {
        "FunctionName": v.name,
        "FunctionArn": function_arn(v.name, None if v.version == LATEST else v.version),
        "Runtime": runtime_id(c),
        "Role": c.role or f"arn:aws:iam::{ACCOUNT}:role/lambda-runner-default",
        "Handler": c.handler,
        "CodeSize": v.code_size,
        "Description": c.description,
        "Timeout": int(c.timeout_s) if float(c.timeout_s).is_integer() else c.timeout_s,
        "MemorySize": c.memory_mb,
        "LastModified": lambda_time(v.created_at),
        "CodeSha256": code_sha256_b64(v.code_sha256),
        "Version": v.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": c.ephemeral_storage_mb},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{v.name}"},
    }
    if c.environment:
        out["Environment"] = {"Variables": dict(c.environment)}
    if c.layers:
        out["Layers"] = [{"Arn": arn, "CodeSize": layer_size(arn) if layer_size else 0}
                         for arn in c.layers]
    return out


def alias_arn(function: str, alias: str) -> str:
    return function_arn(function, alias)


def alias_configuration(a: Alias) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AliasArn": alias_arn(a.function, a.name),
        "Name": a.name,
        "FunctionVersion": a.version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    }
    if a.weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(a.weights)}
    return out


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region()}:{ACCOUNT}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"
