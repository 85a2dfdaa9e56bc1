"""Mappings as Lambda's event source mapping JSON (CreateEventSourceMapping's request,
GetEventSourceMapping's response), for the Lambda REST API and the gRPC edge.

The broker is named the way Lambda names a self-managed source: `EventSourceArn` is the ARN of
the shape the records arrive in (a Kinesis stream for Redis Streams, an SQS queue for a
JetStream subject, a DynamoDB table stream for a PostgreSQL table) and
`SelfManagedEventSource.Endpoints.URL` is the broker's URL. Every other field is Lambda's, one
to one (the table below). `mapping_from_lambda` raises InvalidParameter naming Lambda's field.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from runner.errors import InvalidParameter
from runner.model import ACCOUNT, REGION, function_arn
from runner.sources.shapes import queue_arn, stream_arn
from runner.storage.mapping_model import Mapping, redacted

# Lambda's field -> Mapping's, for the fields that copy straight across.
FIELDS = {
    "BatchSize": "batch_size",
    "MaximumBatchingWindowInSeconds": "batching_window_s",
    "StartingPosition": "starting_position",
    "BisectBatchOnFunctionError": "bisect_on_error",
    "MaximumRetryAttempts": "max_retries",
    "MaximumRecordAgeInSeconds": "max_record_age_s",
    "ParallelizationFactor": "parallelization",
    "Enabled": "enabled",
}
SERVICE_OF = {"redis-stream": "kinesis", "nats-jetstream": "sqs", "postgres-table": "dynamodb"}
TYPE_OF = {v: k for k, v in SERVICE_OF.items()}
_ARN = re.compile(r"^arn:aws:(?P<service>[a-z]+):[^:]*:[^:]*:(?P<resource>.+)$")


def source_arn(m: Mapping) -> str:
    if m.source_type == "redis-stream":
        return stream_arn(m.name)
    if m.source_type == "nats-jetstream":
        return queue_arn(m.name)
    return table_arn(m.name)


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def destination_arn(target: str) -> str:
    kind, _, name = target.partition(":")
    if kind not in ("function", "stream", "subject", "table") or not name:
        raise InvalidParameter("on_failure", f"{target!r}: use function:NAME, stream:NAME, subject:NAME "
                                             "or table:NAME")
    return {"function": function_arn, "stream": stream_arn, "subject": queue_arn, "table": table_arn}[kind](name)


def mapping_to_lambda(m: Mapping) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "UUID": m.uuid,
        "EventSourceArn": source_arn(m),
        "SelfManagedEventSource": {"Endpoints": {"URL": [redacted(m.endpoint)]}},
        "FunctionArn": function_arn(m.function, m.qualifier or None),
        "LastModified": m.last_modified,
        "LastProcessingResult": m.last_result,
        "State": m.state,
        "StateTransitionReason": m.state_reason,
        "FunctionResponseTypes": ["ReportBatchItemFailures"] if m.report_batch_item_failures else [],
        "DestinationConfig": {"OnFailure": {"Destination": destination_arn(m.on_failure)} if m.on_failure else {}},
        "FilterCriteria": {"Filters": [{"Pattern": p} for p in m.filters]},
    }
    for lam, ours in FIELDS.items():
        if lam != "Enabled":
            doc[lam] = getattr(m, ours)
    if m.starting_timestamp is not None:
        doc["StartingPositionTimestamp"] = m.starting_timestamp
    if m.max_concurrency is not None:
        doc["ScalingConfig"] = {"MaximumConcurrency": m.max_concurrency}
    return doc


def mapping_from_lambda(d: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Mapping settings (for EventSources.create, or .update with `partial`) from Lambda's
    request JSON. Unknown fields are refused, so that a setting is never silently ignored."""
    known = set(FIELDS) | {"EventSourceArn", "SelfManagedEventSource", "FunctionName", "FunctionResponseTypes",
                           "DestinationConfig", "FilterCriteria", "ScalingConfig", "StartingPositionTimestamp",
                           "UUID"}
    extra = sorted(set(d) - known)
    if extra:
        raise InvalidParameter(extra[0], "is not supported by this runner's event source mappings")
    out: dict[str, Any] = {}
    if "EventSourceArn" in d:
        match = _ARN.match(str(d["EventSourceArn"]))
        if not match or match["service"] not in TYPE_OF:
            raise InvalidParameter("EventSourceArn", f"{d['EventSourceArn']!r}: give a kinesis stream "
                                                     "(Redis), sqs queue (JetStream) or dynamodb table ARN")
        out["source_type"] = TYPE_OF[match["service"]]
        resource = match["resource"]
        out["name"] = resource.split("/", 1)[1] if "/" in resource else resource
        if out["source_type"] == "postgres-table":
            out["name"] = out["name"].split("/stream/", 1)[0]
    if "SelfManagedEventSource" in d:
        urls = (((d["SelfManagedEventSource"] or {}).get("Endpoints") or {}).get("URL") or [])
        if len(urls) != 1:
            raise InvalidParameter("SelfManagedEventSource", "give Endpoints.URL as a list of one broker URL")
        out["endpoint"] = urls[0]
    if "FunctionName" in d:
        name = str(d["FunctionName"])
        if name.startswith("arn:"):
            parts = name.split(":")
            if len(parts) < 7:
                raise InvalidParameter("FunctionName", f"{name!r} is not a function ARN")
            name, out["qualifier"] = parts[6], (parts[7] if len(parts) > 7 else "")
        out["function"] = name
    for lam, ours in FIELDS.items():
        if lam in d:
            out[ours] = d[lam]
    if "StartingPositionTimestamp" in d:
        ts = d["StartingPositionTimestamp"]
        out["starting_timestamp"] = datetime.fromisoformat(ts).replace(tzinfo=timezone.utc).timestamp() \
            if isinstance(ts, str) else float(ts)
    if "FunctionResponseTypes" in d:
        types = d["FunctionResponseTypes"] or []
        if set(types) - {"ReportBatchItemFailures"}:
            raise InvalidParameter("FunctionResponseTypes", "only ReportBatchItemFailures is supported")
        out["report_batch_item_failures"] = bool(types)
    if "DestinationConfig" in d:
        dest = ((d["DestinationConfig"] or {}).get("OnFailure") or {}).get("Destination")
        out["on_failure"] = _target(dest) if dest else ""
    if "FilterCriteria" in d:
        out["filters"] = tuple(f["Pattern"] for f in (d["FilterCriteria"] or {}).get("Filters") or [])
    if "ScalingConfig" in d:
        out["max_concurrency"] = (d["ScalingConfig"] or {}).get("MaximumConcurrency")
    if not partial:
        for lam, ours in (("FunctionName", "function"), ("EventSourceArn", "source_type"),
                          ("SelfManagedEventSource", "endpoint")):
            if ours not in out:
                raise InvalidParameter(lam, "is required")
    return out


def _target(arn: str) -> str:
    match = _ARN.match(arn)
    if not match:
        raise InvalidParameter("DestinationConfig.OnFailure.Destination", f"{arn!r} is not an ARN")
    service, resource = match["service"], match["resource"]
    if service == "lambda" and resource.startswith("function:"):
        return "function:" + resource.split(":")[1]
    kind = {"kinesis": "stream", "sqs": "subject", "dynamodb": "table"}.get(service)
    if kind is None:
        raise InvalidParameter("DestinationConfig.OnFailure.Destination", f"{arn!r}: give a function, kinesis "
                                                                          "stream, sqs queue or dynamodb table ARN")
    return f"{kind}:{resource.split('/', 1)[1] if '/' in resource else resource}"


def settings_to_lambda(settings: dict[str, Any]) -> dict[str, Any]:
    """Lambda's request JSON for the given Mapping settings (None values left out): what the
    CLI sends, the inverse of mapping_from_lambda."""
    s = {k: v for k, v in settings.items() if v is not None}
    doc: dict[str, Any] = {}
    if "source_type" in s or "name" in s:
        kind = s.get("source_type")
        if kind not in SERVICE_OF:
            raise InvalidParameter("source_type", f"{kind!r} is not one of {', '.join(SERVICE_OF)}")
        arn = {"redis-stream": stream_arn, "nats-jetstream": queue_arn, "postgres-table": table_arn}[kind]
        doc["EventSourceArn"] = arn(s.get("name", ""))
    if "endpoint" in s:
        doc["SelfManagedEventSource"] = {"Endpoints": {"URL": [s["endpoint"]]}}
    if "function" in s:
        q = s.get("qualifier")
        doc["FunctionName"] = function_arn(s["function"], q) if q else s["function"]
    for lam, ours in FIELDS.items():
        if ours in s:
            doc[lam] = s[ours]
    if "starting_timestamp" in s:
        doc["StartingPositionTimestamp"] = s["starting_timestamp"]
    if "report_batch_item_failures" in s:
        doc["FunctionResponseTypes"] = ["ReportBatchItemFailures"] if s["report_batch_item_failures"] else []
    if "on_failure" in s:
        doc["DestinationConfig"] = {"OnFailure": {"Destination": destination_arn(s["on_failure"])}
                                    if s["on_failure"] else {}}
    if "filters" in s:
        doc["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in s["filters"]]}
    if "max_concurrency" in s:
        doc["ScalingConfig"] = {"MaximumConcurrency": s["max_concurrency"]}
    return doc
