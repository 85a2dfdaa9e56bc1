"""Test guest: sleeps `event["sleep"]` seconds (through an HTTP route: the query string's
`sleep`) and records the invocation as one line
"<request id> <start> <end>" (wall-clock seconds) in $RECORD_DIR/<function name>.spans, so a
test can tell whether any two invocations overlapped, whichever node ran them.

One write() with O_APPEND after the sleep: concurrent environments never interleave a line.
"""
import os
import time


def handler(event, context):
    start = time.time()
    sleep = 0
    if isinstance(event, dict):
        sleep = event.get("sleep") or (event.get("queryStringParameters") or {}).get("sleep") or 0
    time.sleep(float(sleep))
    line = f"{context.aws_request_id} {start:.6f} {time.time():.6f}\n"
    path = os.path.join(os.environ["RECORD_DIR"], f"{context.function_name}.spans")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"ran": context.aws_request_id}
