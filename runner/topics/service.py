"""`Topics`: SNS-like topics whose subscribers are functions.

`publish` gives the message a MessageId and queues, for every subscription whose filter
policy passes, ONE asynchronous invocation with SNS's Lambda event:

    {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": ...,
                  "Sns": {"Type": "Notification", "MessageId", "TopicArn", "Subject",
                          "Message", "Timestamp", "SignatureVersion", "Signature",
                          "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"}}]}

Each event's delivery key is "sns:MESSAGEID:SUBSCRIPTION", and every target function is
checked before the first is queued: a publish that fails queues nothing. Message attributes
are accepted in SNS's API form ({"n": {"DataType": "String", "StringValue": "v"}}) or as plain
JSON values ({"n": "v", "m": 5, "l": ["a", "b"]} -> String, Number, String.Array).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from runner.errors import InvalidParameter
from runner.model import ACCOUNT, region, validate_name
from runner.storage.push import Subscription
from runner.topics import filter_policy

MAX_MESSAGE_BYTES = 256 * 1024  # SNS's limit, message and attributes together
MAX_ATTRIBUTES = 10


def topic_arn(topic: str) -> str:
    return f"arn:aws:sns:{region()}:{ACCOUNT}:{topic}"


def normalize_attributes(attrs: Any) -> dict[str, dict[str, str]]:
    """MessageAttributes as the SNS event carries them: {name: {"Type", "Value"}}."""
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise InvalidParameter("attributes", "must be a JSON object of name -> value")
    if len(attrs) > MAX_ATTRIBUTES:
        raise InvalidParameter("attributes", f"{len(attrs)} given; SNS allows {MAX_ATTRIBUTES}")
    out = {}
    for name, v in attrs.items():
        if isinstance(v, dict) and "DataType" in v:
            kind = v["DataType"]
            value = v.get("StringValue", v.get("BinaryValue"))
        elif isinstance(v, bool) or v is None:
            raise InvalidParameter("attributes", f"{name!r}: {json.dumps(v)} has no SNS type; "
                                   "use a string, a number or a list")
        elif isinstance(v, (int, float)):
            kind, value = "Number", json.dumps(v)
        elif isinstance(v, list):
            kind, value = "String.Array", json.dumps(v)
        else:
            kind, value = "String", str(v)
        if kind not in ("String", "Number", "String.Array", "Binary") or \
                not isinstance(value, str):
            raise InvalidParameter("attributes", f"{name!r}: DataType must be String, Number, "
                                   "String.Array or Binary, with a StringValue")
        out[name] = {"Type": kind, "Value": value}
    return out


class Topics:
    """`runner`: check_invoke(name, payload, qualifier=) and invoke_async(name, payload,
    qualifier=, key=)."""

    def __init__(self, store, runner) -> None:
        self.store = store
        self.runner = runner

    def create(self, topic: str) -> str:
        validate_name(topic, "topic")
        self.store.create_topic(topic, time.time())
        return topic_arn(topic)

    def list(self) -> list[str]:
        return self.store.topics()

    def delete(self, topic: str) -> None:
        self.store.delete_topic(topic)

    def subscribe(self, topic: str, function: str, *, qualifier: str = "",
                  policy: Any = None) -> Subscription:
        validate_name(function, "function")
        if policy is not None:
            filter_policy.check(policy)
        sub = Subscription(str(uuid.uuid4()), topic, function, qualifier, policy, time.time())
        return self.store.subscribe(sub)  # an existing one if already subscribed (idempotent)

    def subscriptions(self, topic: str) -> list[Subscription]:
        return self.store.subscriptions(topic)

    def unsubscribe(self, subscription_id: str) -> Subscription:
        return self.store.unsubscribe(subscription_id)

    def publish(self, topic: str, message: str, *, subject: str | None = None,
                attributes: Any = None) -> dict[str, Any]:
        """Queue the message for every matching subscriber; returns {MessageId, invocations}."""
        if not isinstance(message, str) or not message:
            raise InvalidParameter("message", "must be a non-empty string")
        if subject is not None and (not subject or len(subject) > 100):
            raise InvalidParameter("subject", "must be 1-100 characters")
        attrs = normalize_attributes(attributes)
        size = len(message.encode()) + len(json.dumps(attrs).encode())
        if size > MAX_MESSAGE_BYTES:
            raise InvalidParameter("message", f"{size} bytes with its attributes exceeds SNS's "
                                   f"{MAX_MESSAGE_BYTES}-byte limit; publish a reference")
        subs = [s for s in self.store.subscriptions(topic)
                if filter_policy.matches(s.filter_policy, attrs)]
        message_id = str(uuid.uuid4())
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        for s in subs:
            self.runner.check_invoke(s.function, None, qualifier=s.qualifier or None)
        out = []
        for s in subs:
            event = sns_event(topic, s, message_id, message, subject, attrs, stamp)
            rid = self.runner.invoke_async(s.function, json.dumps(event).encode(),
                                           qualifier=s.qualifier or None,
                                           key=f"sns:{message_id}:{s.id}")
            out.append({"subscription": s.id, "function": s.function, "request_id": rid})
        return {"MessageId": message_id, "invocations": out}


def sns_event(topic: str, s: Subscription, message_id: str, message: str,
              subject: str | None, attrs: dict[str, dict[str, str]], stamp: str) -> dict:
    arn = topic_arn(topic)
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": f"{arn}:{s.id}",
        "Sns": {"Type": "Notification", "MessageId": message_id, "TopicArn": arn,
                "Subject": subject, "Message": message, "Timestamp": stamp,
                "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "",
                "UnsubscribeUrl": "", "MessageAttributes": attrs},
    }]}
