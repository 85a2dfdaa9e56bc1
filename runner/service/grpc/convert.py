"""Conversions between the gRPC messages and the runner's own data (model.py)."""

from __future__ import annotations

import json
from typing import Any

from runner.invocation_record import InvocationResult, Report
from runner.model import FunctionVersion
from runner.service.proto import runner_api_pb2 as pb

_OPTIONAL = ("memory_mb", "timeout_s", "concurrency", "ephemeral_storage_mb", "network", "provisioned",
             "max_retries", "max_event_age_s", "on_success", "on_failure", "network_policy",
             "description", "role", "log_format", "application_log_level", "system_log_level")


def config_settings(msg: pb.FunctionConfig) -> dict[str, Any]:
    """The settings a DeployRequest carries, None for fields the client left unset."""
    out: dict[str, Any] = {
        "runtime": msg.runtime or None,
        "handler": msg.handler or None,
        "environment": dict(msg.environment),
        "replace_environment": msg.replace_environment,
    }
    for field in _OPTIONAL:
        out[field] = getattr(msg, field) if msg.HasField(field) else None
    # Layers (issue 20): a repeated field has no presence, so an update sets them when given,
    # or when replace_layers says an empty list means "none".
    out["layers"] = tuple(msg.layers) if (msg.layers or msg.replace_layers) else None
    if out["timeout_s"] is not None and float(out["timeout_s"]).is_integer():
        out["timeout_s"] = float(out["timeout_s"])
    return out


def function_info(v: FunctionVersion, revision_id: str) -> pb.FunctionInfo:
    """`revision_id` is the Runner's RevisionId of `v` (Runner.revision_id): it lives in the
    registry, beside the version rather than in it."""
    c = v.config
    return pb.FunctionInfo(
        name=v.name,
        version=v.version,
        revision=v.revision,
        config=pb.FunctionConfig(
            runtime=c.runtime, handler=c.handler, memory_mb=c.memory_mb, timeout_s=c.timeout_s,
            environment=dict(c.environment), concurrency=c.concurrency,
            ephemeral_storage_mb=c.ephemeral_storage_mb, network=c.network,
            provisioned=c.provisioned, max_retries=c.max_retries,
            max_event_age_s=c.max_event_age_s, on_success=c.on_success, on_failure=c.on_failure,
            network_policy=c.network_policy,
            description=c.description, role=c.role, layers=list(c.layers),
            log_format=c.log_format, application_log_level=c.application_log_level,
            system_log_level=c.system_log_level,
        ),
        code_sha256=v.code_sha256,
        code_size=v.code_size,
        last_modified=v.created_at,
        arn=v.arn,
        revision_id=revision_id,
    )


def invoke_response(r: InvocationResult, tail: bool) -> pb.InvokeResponse:
    rep = r.report
    # Built from dicts in one constructor call (a Report message made first and merged in,
    # and fields set to their proto3 defaults, cost twice the instructions: decision 085);
    # the bytes on the wire are the same.
    report = {"request_id": rep.request_id, "duration_ms": rep.duration_ms,
              "billed_duration_ms": rep.billed_duration_ms, "memory_size_mb": rep.memory_size_mb,
              "max_memory_used_mb": rep.max_memory_used_mb}
    if rep.cold_start:
        report["cold_start"] = True
    if rep.init_duration_ms is not None:
        report["init_duration_ms"] = rep.init_duration_ms
    if r.function_error:
        resp = pb.InvokeResponse(payload=r.payload, function_error=r.function_error,
                                 executed_version=r.executed_version, report=report,
                                 request_id=r.request_id, status_code=200)
    else:
        resp = pb.InvokeResponse(payload=r.payload, executed_version=r.executed_version,
                                 report=report, request_id=r.request_id, status_code=200)
    if r.error:
        resp.error.CopyFrom(pb.FunctionErrorDetail(
            error_type=r.error.get("errorType", ""), error_message=r.error.get("errorMessage", ""),
            stack_trace=[str(s) for s in r.error.get("stackTrace") or []],
        ))
    if tail:
        resp.log_result = r.log_tail()
    return resp


def invocation_result(resp: pb.InvokeResponse) -> InvocationResult:
    """A peer's InvokeResponse as the result of a local invoke (Runner.remote_invoke, decision
    084): the error document is the payload itself, as invoke_response() sent it; `log` is the
    tail the peer returned (the whole block is in the peer's log)."""
    rep = resp.report
    report = Report(rep.request_id, rep.duration_ms, rep.billed_duration_ms, rep.memory_size_mb,
                    rep.max_memory_used_mb,
                    rep.init_duration_ms if rep.HasField("init_duration_ms") else None,
                    rep.cold_start)
    error = None
    if resp.function_error:
        try:
            error = json.loads(resp.payload)
        except ValueError:
            error = None
        if not isinstance(error, dict):
            error = {"errorMessage": resp.error.error_message, "errorType": resp.error.error_type,
                     "stackTrace": list(resp.error.stack_trace)}
    return InvocationResult(resp.request_id, resp.payload, resp.function_error or None, error,
                            resp.log_result, report, resp.executed_version)


def route(r) -> pb.Route:
    return pb.Route(method=r.method, path=r.path, function=r.function, qualifier=r.qualifier,
                    route_key=r.route_key, created_at=r.created_at)


def dead_letter(d) -> pb.DeadLetter:
    return pb.DeadLetter(request_id=d.id, function=d.function, qualifier=d.qualifier,
                         payload=d.payload, record_json=json.dumps(d.record),
                         created_at=d.created_at)
