"""What invokes a function besides a direct call, for its page on the dashboard: event source
mappings (runner/sources), object-store triggers (runner/triggers), topic subscriptions
(runner/topics) and schedules (runner/schedules).

`push` is the server's service.push.Push (schedules, triggers, topics) and `sources` its
sources.manager.EventSources; either may be None (a front built without them, as in some
embedded setups), which the JSON says ("configured": false) and the page shows as "not
configured on this server" rather than as "none".

Broker endpoints are shown with their passwords redacted: the dashboard is read by anyone
who has its token, who need not have the brokers' credentials.
"""

from __future__ import annotations

from runner.storage.mapping_model import redacted


def for_function(name: str, push, sources) -> dict:
    return {"mappings": _mappings(name, sources), "triggers": _triggers(name, push),
            "subscriptions": _subscriptions(name, push), "schedules": _schedules(name, push)}


def _mappings(name: str, sources) -> dict:
    if sources is None:
        return {"configured": False, "items": []}
    return {"configured": True, "items": [
        {"uuid": m.uuid, "source_type": m.source_type, "endpoint": redacted(m.endpoint),
         "name": m.name, "qualifier": m.qualifier, "batch_size": m.batch_size,
         "enabled": m.enabled, "state": m.state, "last_result": m.last_result}
        for m in sources.list(name)]}


def _triggers(name: str, push) -> dict:
    if push is None:
        return {"configured": False, "items": []}
    return {"configured": True, "items": [
        {"name": t.name, "bucket": t.bucket, "events": list(t.events), "prefix": t.prefix,
         "suffix": t.suffix, "qualifier": t.qualifier}
        for t in push.triggers.list() if t.function == name]}


def _subscriptions(name: str, push) -> dict:
    if push is None:
        return {"configured": False, "items": []}
    # Subscriptions are stored per topic; a server has few topics, so one query each.
    return {"configured": True, "items": [
        {"id": s.id, "topic": s.topic, "qualifier": s.qualifier,
         "filter_policy": s.filter_policy}
        for topic in push.topics.list() for s in push.topics.subscriptions(topic)
        if s.function == name]}


def _schedules(name: str, push) -> dict:
    if push is None:
        return {"configured": False, "items": []}
    return {"configured": True, "items": [
        {"name": s.name, "expression": s.expression, "timezone": s.timezone,
         "qualifier": s.qualifier, "enabled": s.enabled, "next_slot": s.next_slot}
        for s in push.scheduler.list() if s.function == name]}
