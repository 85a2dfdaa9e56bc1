"""Layer operations: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers,
ListLayerVersions, DeleteLayerVersion."""

from __future__ import annotations

from typing import Any

from runner.errors import InvalidParameter
from runner.service.http.lambda_api.dispatch import OperationTable, Req
from runner.service.http.lambda_api.functions import _zip
from runner.service.http.lambda_api.pagination import page
from runner.service.http.lambda_api.shapes import code_sha256_b64, lambda_time, layer_arn
from runner.storage.layers import LayerVersion, parse_arn

L = "/2018-10-31/layers"


def layer_version_doc(lv: LayerVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Content": {"Location": "", "CodeSha256": code_sha256_b64(lv.code_sha256),
                    "CodeSize": lv.code_size},
        "LayerArn": layer_arn(lv.name),
        "LayerVersionArn": layer_arn(lv.name, lv.version),
        "Description": lv.description,
        "CreatedDate": lambda_time(lv.created_at),
        "Version": lv.version,
        "CompatibleRuntimes": list(lv.compatible_runtimes),
        "CompatibleArchitectures": ["x86_64"],
    }
    if lv.license:
        out["LicenseInfo"] = lv.license
    return out


def _list_item(lv: LayerVersion) -> dict[str, Any]:
    doc = layer_version_doc(lv)
    doc.pop("Content")
    doc.pop("LayerArn")
    return doc


def _version(req: Req) -> int:
    raw = req.params["VersionNumber"]
    if not raw.isascii() or not raw.isdigit():
        raise InvalidParameter("VersionNumber", f"{raw!r} is not a version number")
    return int(raw)


def publish_layer_version(api, req: Req):
    content = _zip(Req(req.method, {}, {}, req.body.get("Content") or {}))
    runtimes = req.body.get("CompatibleRuntimes") or []
    lv = api.runner.publish_layer(req.params["LayerName"], content,
                                  description=req.str("Description", "") or "",
                                  compatible_runtimes=tuple(runtimes),
                                  license=req.str("LicenseInfo", "") or "")
    return 201, layer_version_doc(lv)


def get_layer_version(api, req: Req):
    return 200, layer_version_doc(api.runner.get_layer(req.params["LayerName"], _version(req)))


def list_layers(api, req: Req):
    if req.query.get("find") == "LayerVersion":  # GetLayerVersionByArn
        name, version = parse_arn(req.query.get("Arn", ""))
        return 200, layer_version_doc(api.runner.get_layer(name, version))
    runtime = req.query.get("CompatibleRuntime")
    items = [lv for lv in api.runner.list_layers()
             if not runtime or runtime in lv.compatible_runtimes]
    shown, marker = page(items, req.query, key=lambda lv: lv.name)
    out: dict[str, Any] = {"Layers": [{"LayerName": lv.name, "LayerArn": layer_arn(lv.name),
                                       "LatestMatchingVersion": _list_item(lv)} for lv in shown]}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def list_layer_versions(api, req: Req):
    runtime = req.query.get("CompatibleRuntime")
    items = [lv for lv in api.runner.list_layer_versions(req.params["LayerName"])
             if not runtime or runtime in lv.compatible_runtimes]
    shown, marker = page(items, req.query, key=lambda lv: f"{lv.version:09d}")
    out: dict[str, Any] = {"LayerVersions": [_list_item(lv) for lv in shown]}
    if marker:
        out["NextMarker"] = marker
    return 200, out


def delete_layer_version(api, req: Req):
    api.runner.delete_layer_version(req.params["LayerName"], _version(req))
    return 204, None


def register(table: OperationTable) -> None:
    table.add("GET", L, list_layers)
    table.add("POST", L + "/{LayerName}/versions", publish_layer_version)
    table.add("GET", L + "/{LayerName}/versions", list_layer_versions)
    table.add("GET", L + "/{LayerName}/versions/{VersionNumber}", get_layer_version)
    table.add("DELETE", L + "/{LayerName}/versions/{VersionNumber}", delete_layer_version)
