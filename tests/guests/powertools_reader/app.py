"""Test guest: reads each event with aws-lambda-powertools' data classes (bundled beside this
file by the test) and appends what it read, one JSON line per record, to
$RECORD_DIR/<function>.log. The data class is chosen by the record's eventSource."""
import json
import os

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, KinesisStreamEvent, SQSEvent


def handler(event, context):
    source = event["Records"][0].get("eventSource") or event["Records"][0].get("EventSource")
    out = []
    if source == "aws:kinesis":
        for r in KinesisStreamEvent(event).records:
            out.append({"kind": "kinesis", "data": r.kinesis.data_as_json(), "key": r.kinesis.partition_key,
                        "seq": r.kinesis.sequence_number, "arn": r.event_source_arn})
    elif source == "aws:sqs":
        for r in SQSEvent(event).records:
            out.append({"kind": "sqs", "data": r.json_body, "id": r.message_id,
                        "receives": r.attributes.approximate_receive_count, "arn": r.event_source_arn})
    else:
        for r in DynamoDBStreamEvent(event).records:
            new = r.dynamodb.new_image or {}
            out.append({"kind": "dynamodb", "event": r.event_name.name, "keys": {k: str(v) for k, v in
                                                                                   r.dynamodb.keys.items()},
                        "new": {k: str(v) for k, v in new.items()}, "seq": r.dynamodb.sequence_number})
    fd = os.open(os.path.join(os.environ["RECORD_DIR"], f"{context.function_name}.log"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(json.dumps(o) + "\n" for o in out).encode())
    finally:
        os.close(fd)
    return {"batchItemFailures": []}
