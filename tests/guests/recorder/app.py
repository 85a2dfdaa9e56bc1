"""Test guest: records every invocation as one line "<request id> <event JSON>" in
$RECORD_DIR/<function name>.log, then sleeps / fails as the event asks.

O_APPEND with one write() per line: concurrent environments never interleave a line.
"""
import json
import os
import time


def handler(event, context):
    line = f"{context.aws_request_id} {json.dumps(event, sort_keys=True)}\n"
    path = os.path.join(os.environ["RECORD_DIR"], f"{context.function_name}.log")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if isinstance(event, dict):
        if event.get("sleep"):
            time.sleep(float(event["sleep"]))
        if event.get("fail"):
            raise RuntimeError(f"asked to fail: {event['fail']}")
    return {"recorded": context.aws_request_id}
