"""Test guest for event source mappings: records each record it processed as one line
"<record id> <key> <n>" in $RECORD_DIR/<function>.log, after the batch (one write, fsync).

A record whose payload has "poison": true fails: with MODE=raise the whole batch raises
(nothing of it is recorded); with MODE=items it is named in batchItemFailures (for an ordered
source, ORDERED=1, processing stops at the first one, as Lambda advises). DUMP=1 appends each
whole event to $RECORD_DIR/<function>.events. SLEEP=seconds per batch.
"""
import base64
import json
import os
import time


def parse(r):
    if "kinesis" in r:
        k = r["kinesis"]
        raw = base64.b64decode(k["data"])
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"raw": raw.hex()}
        return k["sequenceNumber"], k["partitionKey"], doc
    if "messageId" in r:
        try:
            doc = json.loads(r["body"])
        except ValueError:
            doc = {"raw": r["body"]}
        return r["messageId"], str(doc.get("key", "-")), doc
    ddb = r["dynamodb"]
    image = ddb.get("NewImage") or ddb.get("OldImage") or {}
    doc = {k: list(v.values())[0] for k, v in image.items()}
    if "n" in doc:
        doc["n"] = int(doc["n"])
    return ddb["SequenceNumber"], r["eventName"], doc


def handler(event, context):
    base = os.path.join(os.environ["RECORD_DIR"], context.function_name)
    if os.environ.get("DUMP"):
        _append(base + ".events", json.dumps(event) + "\n")
    if os.environ.get("SLEEP"):
        time.sleep(float(os.environ["SLEEP"]))
    mode = os.environ.get("MODE", "raise")
    lines, failures = [], []
    for r in event["Records"]:
        ident, key, doc = parse(r)
        if isinstance(doc, dict) and doc.get("poison"):
            if mode == "raise":
                raise RuntimeError(f"poison record {ident}")
            failures.append({"itemIdentifier": ident})
            if os.environ.get("ORDERED"):
                break
            continue
        lines.append(f"{ident} {key} {doc.get('n') if isinstance(doc, dict) else None}\n")
    if lines:
        _append(base + ".log", "".join(lines))
    return {"batchItemFailures": failures}


def _append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
