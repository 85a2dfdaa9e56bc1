"""Pushed notifications in, S3 event records out.

Two bodies are understood:

* S3's own notification (`{"Records": [...]}`, as AWS, MinIO and Ceph send it): each record
  must name `eventName`, `s3.bucket.name` and `s3.object.key` (URL-encoded, as S3 sends it);
  the rest is passed on as sent. S3's `s3:TestEvent` body is accepted and yields nothing.
* The SeaweedFS filer webhook (`[notification.webhook]` in notification.toml): one filer event
  per request, `{"event_type": "create"|"update"|"delete"|"rename", "key": "/buckets/B/K",
  "message": {"old_entry", "new_entry", "new_parent_path", ...}}`. Objects live under
  `/buckets/<bucket>/`; directories and entries outside a bucket are not objects and yield
  nothing. create/update -> ObjectCreated:Put; delete -> ObjectRemoved:Delete; rename ->
  ObjectRemoved:Delete of the old key and ObjectCreated:Copy of the new one.

A record is built as S3 builds it: key URL-encoded with spaces as '+', size, eTag (the S3
ETag SeaweedFS keeps, else the content MD5 in hex), and a sequencer (hex of the entry's
modification time in ns) that orders the events of one key.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from runner.errors import InvalidParameter, InvalidRequestContent, RequestTooLarge
from runner.model import REGION

MAX_BODY_BYTES = 256 * 1024
BUCKETS = "/buckets/"


def parse_body(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLarge(f"body: {len(body)} bytes exceeds the {MAX_BODY_BYTES}-byte limit "
                              "for a notification; send fewer records per request")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContent("body", f"is not JSON ({exc}); send an S3 event "
                                    "notification or a SeaweedFS filer webhook event") from None


def is_seaweedfs(doc: Any) -> bool:
    return isinstance(doc, dict) and "event_type" in doc and "message" in doc


def s3_records(doc: Any) -> list[dict[str, Any]]:
    """The records of an S3-format notification, each checked; InvalidParameter naming the
    first bad field (nothing is delivered from a body with one bad record)."""
    if isinstance(doc, dict) and doc.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("Records"), list):
        raise InvalidParameter("Records", "missing; the body must be an S3 event notification "
                               "{\"Records\": [...]}")
    out = []
    for i, r in enumerate(doc["Records"]):
        where = f"Records[{i}]"
        s3 = r.get("s3") if isinstance(r, dict) else None
        if not isinstance(s3, dict):
            raise InvalidParameter(f"{where}.s3", "missing or not an object")
        if not isinstance(r.get("eventName"), str) or ":" not in r["eventName"]:
            raise InvalidParameter(f"{where}.eventName", "missing or not like ObjectCreated:Put")
        bucket = (s3.get("bucket") or {}).get("name") if isinstance(s3.get("bucket"), dict) \
            else None
        key = (s3.get("object") or {}).get("key") if isinstance(s3.get("object"), dict) else None
        if not isinstance(bucket, str) or not bucket:
            raise InvalidParameter(f"{where}.s3.bucket.name", "missing or empty")
        if not isinstance(key, str) or not key:
            raise InvalidParameter(f"{where}.s3.object.key", "missing or empty")
        r = dict(r)
        r["eventName"] = r["eventName"].removeprefix("s3:")  # MinIO says s3:ObjectCreated:Put
        out.append(r)
    return out


def seaweedfs_records(doc: dict[str, Any]) -> list[dict[str, Any]]:
    kind = doc.get("event_type")
    msg = doc.get("message")
    path = doc.get("key")
    if not isinstance(msg, dict) or not isinstance(path, str):
        raise InvalidParameter("message", "a SeaweedFS webhook event needs 'key' and 'message'")
    old, new = msg.get("old_entry"), msg.get("new_entry")
    if kind in ("create", "update"):
        return _object(path, new, "ObjectCreated:Put")
    if kind == "delete":
        return _object(path, old, "ObjectRemoved:Delete")
    if kind == "rename":
        new_path = (msg.get("new_parent_path") or "").rstrip("/") + "/" + (new or {}).get("name", "")
        return _object(path, old, "ObjectRemoved:Delete") + \
            _object(new_path, new, "ObjectCreated:Copy")
    raise InvalidParameter("event_type", f"{kind!r} is not create, update, delete or rename")


def _object(path: str, entry: Any, event_name: str) -> list[dict[str, Any]]:
    if not isinstance(entry, dict) or entry.get("is_directory") or not path.startswith(BUCKETS):
        return []
    bucket, _, key = path[len(BUCKETS):].partition("/")
    if not bucket or bucket.startswith(".") or not key:
        return []  # SeaweedFS's own metadata (/buckets/.system) or the bucket directory
    attrs = entry.get("attributes") or {}
    chunks = entry.get("chunks") or []
    ns = max([c.get("modified_ts_ns", 0) for c in chunks] +
             [int(attrs.get("mtime", 0)) * 1_000_000_000 + int(attrs.get("mtime_ns", 0) or 0)])
    return [s3_record(bucket, key, event_name, size=int(attrs.get("file_size", 0)),
                      etag=_etag(entry), sequencer=f"{ns:016X}",
                      when=datetime.fromtimestamp(ns / 1e9, timezone.utc))]


def s3_record(bucket: str, key: str, event_name: str, *, size: int = 0, etag: str = "",
              sequencer: str = "", when: datetime | None = None) -> dict[str, Any]:
    """An S3 event record (eventVersion 2.1), as S3 sends it to Lambda."""
    when = when or datetime.now(timezone.utc)
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": sequencer}
    if not event_name.startswith("ObjectRemoved"):
        obj.update(size=size, eTag=etag)
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "runner"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": sequencer, "x-amz-id-2": ""},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "runner"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj},
    }


def decoded_key(record: dict[str, Any]) -> str:
    return unquote_plus(record["s3"]["object"]["key"])


def _etag(entry: dict[str, Any]) -> str:
    ext = entry.get("extended") or {}
    for value, binary in ((ext.get("Seaweed-X-Amz-ETag"), False),
                          ((entry.get("attributes") or {}).get("md5"), True)):
        if not value:
            continue
        try:
            raw = base64.b64decode(value)
        except (binascii.Error, ValueError):
            continue
        return raw.hex() if binary else raw.decode(errors="replace").strip('"')
    return ""
