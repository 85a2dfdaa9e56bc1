"""`Triggers`: object-store triggers and the delivery of pushed notifications.

Delivery is as S3 invokes Lambda: each record that matches a trigger (bucket, event type,
prefix, suffix) becomes ONE asynchronous invocation of the trigger's function with the event
`{"Records": [record]}`, through the durable async queue (retries, event age, destinations).

All or nothing per request: the whole body is checked (JSON, size, every record's fields,
every target function) before anything is queued, so a bad request queues nothing. Each
queued event carries the delivery key "s3:TRIGGER:BUCKET:KEY:EVENT:SEQUENCER": a store that
sends the same notification again (SeaweedFS retries a webhook it got no answer to) invokes
once. A record without a sequencer is never de-duplicated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from runner.errors import InvalidParameter, ResourceNotFound
from runner.model import validate_name
from runner.storage.push import Trigger
from runner.triggers import records as rec
from runner.triggers import rules

_BUCKET_OK = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


@dataclass
class Delivery:
    """What a pushed notification did: the request ids queued, per trigger."""

    records: int = 0
    invocations: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "invocations": self.invocations}


class Triggers:
    """`runner` is what it needs of the Runner: check_invoke(name, payload, qualifier=) and
    invoke_async(name, payload, qualifier=, key=)."""

    def __init__(self, store, runner) -> None:
        self.store = store
        self.runner = runner

    def add(self, name: str, function: str, bucket: str, *, events: list[str] | None = None,
            prefix: str = "", suffix: str = "", qualifier: str = "") -> Trigger:
        validate_name(name, "name")
        validate_name(function, "function")
        if not (3 <= len(bucket or "") <= 63) or not set(bucket) <= _BUCKET_OK:
            raise InvalidParameter("bucket", f"{bucket!r} is not an S3 bucket name; use 3-63 "
                                   "lowercase letters, digits, '.' or '-'")
        types = tuple(rules.check_event_type(e) for e in (events or ["s3:ObjectCreated:*"]))
        rules.check_filters(prefix, suffix)
        t = Trigger(name, function, bucket, types, prefix, suffix, qualifier, time.time())
        with self.store.adding():
            for other in self.store.triggers(bucket):
                if any(rules.types_overlap(a, b) for a in types for b in other.events) and \
                        rules.filters_overlap(prefix, suffix, other.prefix, other.suffix):
                    raise InvalidParameter(
                        "prefix", f"configurations overlap: trigger {other.name!r} on bucket "
                        f"{bucket!r} already covers these event types with an overlapping "
                        "prefix/suffix (S3 refuses this); narrow --prefix/--suffix or --events")
            self.store.add_trigger(t)
        return t

    def list(self) -> list[Trigger]:
        return self.store.triggers()

    def get(self, name: str) -> Trigger:
        return self.store.get_trigger(name)

    def delete(self, name: str) -> Trigger:
        return self.store.delete_trigger(name)

    # ------------------------------------------------------------------ delivery

    def deliver(self, body: bytes) -> Delivery:
        """Turn one pushed body (S3 format or SeaweedFS webhook) into async invocations.
        Raises (RequestTooLarge, InvalidRequestContent, InvalidParameter, ResourceNotFound
        for a bucket no trigger watches) with nothing queued."""
        doc = rec.parse_body(body)
        seaweed = rec.is_seaweedfs(doc)
        records = rec.seaweedfs_records(doc) if seaweed else rec.s3_records(doc)
        plan: list[tuple[Trigger, dict[str, Any]]] = []
        for r in records:
            bucket = r["s3"]["bucket"]["name"]
            watching = self.store.triggers(bucket)
            if not watching:
                if seaweed:  # the filer reports every bucket; unwatched ones are not an error
                    continue
                raise ResourceNotFound(f"bucket: no trigger watches bucket {bucket!r}; add one "
                                       "with `runner trigger add NAME --function F --bucket "
                                       f"{bucket}`")
            key = rec.decoded_key(r)
            for t in watching:
                if any(rules.type_matches(e, r["eventName"]) for e in t.events) and \
                        rules.key_matches(key, t.prefix, t.suffix):
                    plan.append((t, r))
        payloads = []
        for t, r in plan:  # every target checked before the first is queued
            payload = json.dumps({"Records": [r]}).encode()
            self.runner.check_invoke(t.function, None, qualifier=t.qualifier or None)
            payloads.append(payload)
        out = Delivery(records=len(records))
        for (t, r), payload in zip(plan, payloads):
            seq = r["s3"]["object"].get("sequencer")
            key = (f"s3:{t.name}:{t.created_at!r}:{r['s3']['bucket']['name']}:"
                   f"{r['s3']['object']['key']}:{r['eventName']}:{seq}") if seq else None
            rid = self.runner.invoke_async(t.function, payload, qualifier=t.qualifier or None,
                                           key=key)
            if rid is not None:
                out.invocations.append({"trigger": t.name, "function": t.function,
                                        "request_id": rid})
        return out
