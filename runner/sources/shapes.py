"""Records in Lambda's event shapes: Kinesis (Redis Streams), SQS (JetStream), DynamoDB
Streams (PostgreSQL table changes), as documented for Lambda's event source mappings, so that
handlers written for those services (and aws-lambda-powertools' data classes) read them
unchanged. ARNs use the runner's region and account (model.region(), model.ACCOUNT).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from runner.model import ACCOUNT, region
from runner.sources.base import Record

# A body that is not UTF-8 cannot be an SQS body (a string); it travels base64-encoded with
# this message attribute saying so (docs/event-sources.md).
BODY_ENCODING_ATTRIBUTE = "runner-body-encoding"


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{region()}:{ACCOUNT}:stream/{name}"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{region()}:{ACCOUNT}:{name}"


def table_stream_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{region()}:{ACCOUNT}:table/{name}/stream/runner"


def kinesis_record(r: Record, stream: str) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r.key,
            "sequenceNumber": r.id,
            "data": base64.b64encode(r.data).decode("ascii"),
            "approximateArrivalTimestamp": r.arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{r.id}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/runner",
        "awsRegion": region(),
        "eventSourceARN": stream_arn(stream),
    }


def sqs_record(r: Record, queue: str) -> dict[str, Any]:
    attrs = {name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
             for name, value in (r.meta.get("headers") or {}).items()}
    try:
        body = r.data.decode("utf-8")
    except UnicodeDecodeError:
        body = base64.b64encode(r.data).decode("ascii")
        attrs[BODY_ENCODING_ATTRIBUTE] = {"stringValue": "base64", "stringListValues": [],
                                          "binaryListValues": [], "dataType": "String"}
    sent_ms = str(int(r.arrival * 1000))
    return {
        "messageId": r.id,
        "receiptHandle": r.meta.get("receipt", r.id),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(r.deliveries),
            "SentTimestamp": sent_ms,
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": sent_ms,
            # Lambda adds the message's X-Ray header here when it carried one.
            **({"AWSTraceHeader": r.trace} if r.trace else {}),
        },
        "messageAttributes": attrs,
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue),
        "awsRegion": region(),
    }


def dynamodb_record(r: Record, table: str) -> dict[str, Any]:
    op = r.meta["op"]
    ddb: dict[str, Any] = {
        "ApproximateCreationDateTime": int(r.arrival),
        "Keys": typed_map(r.meta["keys"]),
        "SequenceNumber": r.id,
        "SizeBytes": len(r.data),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if r.meta.get("new") is not None:
        ddb["NewImage"] = typed_map(r.meta["new"])
    if r.meta.get("old") is not None:
        ddb["OldImage"] = typed_map(r.meta["old"])
    return {
        "eventID": r.id,
        "eventName": {"INSERT": "INSERT", "UPDATE": "MODIFY", "DELETE": "REMOVE"}[op],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region(),
        "dynamodb": ddb,
        "eventSourceARN": table_stream_arn(table),
    }


def typed(value: Any) -> dict[str, Any]:
    """A JSON value in DynamoDB's typed JSON (AttributeValue)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": json.dumps(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [typed(v) for v in value]}
    if isinstance(value, dict):
        return {"M": typed_map(value)}
    return {"S": str(value)}


def typed_map(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: typed(v) for k, v in doc.items()}


def failure_record(*, request_id: str, function_arn: str, condition: str, invokes: int,
                   error: str | None, batch_info: dict[str, Any], records: list[dict]) -> dict[str, Any]:
    """Lambda's on-failure record for a stream batch: the request that failed, why it was given
    up (RetryAttemptsExhausted, RecordAgeExceeded, PayloadTooLarge) and the batch's
    coordinates; `records` (the event records themselves) is the runner's addition, because a
    dead-letter stream outlives the source's retention."""
    return {
        "requestContext": {"requestId": request_id, "functionArn": function_arn, "condition": condition,
                           "approximateInvokeCount": invokes},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": error or ""},
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **batch_info,
        "records": records,
    }


def arrival_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
