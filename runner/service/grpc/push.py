"""gRPC servicers of the push side: Schedules, Triggers, Topics (proto/schedules.proto,
triggers.proto, topics.proto) over one `service.push.Push`. Translation only."""

from __future__ import annotations

import functools
import json

from runner.errors import InvalidParameter
from runner.service.grpc.status import abort
from runner.service.proto import schedules_pb2 as spb
from runner.service.proto import schedules_pb2_grpc as spb_grpc
from runner.service.proto import topics_pb2 as tpb
from runner.service.proto import topics_pb2_grpc as tpb_grpc
from runner.service.proto import triggers_pb2 as gpb
from runner.service.proto import triggers_pb2_grpc as gpb_grpc
from runner.topics.service import topic_arn

SERVICES = (spb.DESCRIPTOR.services_by_name["Schedules"].full_name,
            gpb.DESCRIPTOR.services_by_name["Triggers"].full_name,
            tpb.DESCRIPTOR.services_by_name["Topics"].full_name)


def _edge(method):
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:
            abort(context, exc)
    return wrapper


def _json(text: str, field: str):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidParameter(field, f"is not JSON ({exc})") from None


# ---------------------------------------------------------------------------- schedules

def schedule_pb(s) -> spb.Schedule:
    return spb.Schedule(
        name=s.name, function=s.function, qualifier=s.qualifier, expression=s.expression,
        timezone=s.timezone, input_json=json.dumps(s.input) if s.input is not None else "",
        flexible_window_min=s.flexible_window_min, max_retries=s.max_retries,
        max_event_age_s=s.max_event_age_s, dead_letter=s.dead_letter, start_at=s.start_at,
        end_at=s.end_at, enabled=s.enabled, next_slot=s.next_slot, created_at=s.created_at)


def _settings(m: spb.Schedule, only: list[str] | None = None) -> dict:
    out = {"qualifier": m.qualifier, "timezone": m.timezone or "UTC",
           "input": _json(m.input_json, "input"), "flexible_window_min": m.flexible_window_min,
           "dead_letter": m.dead_letter}
    for f in ("max_retries", "max_event_age_s", "start_at", "end_at", "enabled"):
        if m.HasField(f):
            out[f] = getattr(m, f)
    if only is None:
        return out
    every = dict(out, function=m.function, expression=m.expression)
    for f in ("start_at", "end_at"):
        every.setdefault(f, None)  # named but unset: clear it
    unknown = [f for f in only if f not in every]
    if unknown:
        raise InvalidParameter("fields", f"{unknown[0]!r} cannot be updated; name schedule "
                               "settings such as expression, timezone, enabled")
    return {f: every[f] for f in only}


class SchedulesServicer(spb_grpc.SchedulesServicer):
    def __init__(self, push) -> None:
        self.s = push.scheduler

    @_edge
    def AddSchedule(self, request, context):
        return schedule_pb(self.s.add(request.name, request.function, request.expression,
                                      **_settings(request)))

    @_edge
    def UpdateSchedule(self, request, context):
        changes = _settings(request.schedule, list(request.fields))
        return schedule_pb(self.s.update(request.schedule.name, **changes))

    @_edge
    def GetSchedule(self, request, context):
        return schedule_pb(self.s.get(request.name))

    @_edge
    def ListSchedules(self, request, context):
        return spb.ListSchedulesResponse(schedules=[schedule_pb(s) for s in self.s.list()])

    @_edge
    def DeleteSchedule(self, request, context):
        return schedule_pb(self.s.delete(request.name))

    @_edge
    def ListDroppedSlots(self, request, context):
        self.s.get(request.name)
        return spb.ListDroppedSlotsResponse(dropped=[
            spb.DroppedSlot(slot=d.slot, reason=d.reason, at=d.at)
            for d in self.s.store.dropped(request.name)])


# ---------------------------------------------------------------------------- triggers

def trigger_pb(t) -> gpb.Trigger:
    return gpb.Trigger(name=t.name, function=t.function, qualifier=t.qualifier, bucket=t.bucket,
                       events=list(t.events), prefix=t.prefix, suffix=t.suffix,
                       created_at=t.created_at)


class TriggersServicer(gpb_grpc.TriggersServicer):
    def __init__(self, push) -> None:
        self.t = push.triggers

    @_edge
    def AddTrigger(self, request, context):
        return trigger_pb(self.t.add(request.name, request.function, request.bucket,
                                     events=list(request.events) or None, prefix=request.prefix,
                                     suffix=request.suffix, qualifier=request.qualifier))

    @_edge
    def GetTrigger(self, request, context):
        return trigger_pb(self.t.get(request.name))

    @_edge
    def ListTriggers(self, request, context):
        return gpb.ListTriggersResponse(triggers=[trigger_pb(t) for t in self.t.list()])

    @_edge
    def DeleteTrigger(self, request, context):
        return trigger_pb(self.t.delete(request.name))

    @_edge
    def Notify(self, request, context):
        out = self.t.deliver(request.body)
        return gpb.NotifyResponse(records=out.records,
                                  request_ids=[i["request_id"] for i in out.invocations])


# ---------------------------------------------------------------------------- topics

def subscription_pb(s) -> tpb.Subscription:
    return tpb.Subscription(id=s.id, topic=s.topic, function=s.function, qualifier=s.qualifier,
                            filter_policy_json=json.dumps(s.filter_policy)
                            if s.filter_policy is not None else "", created_at=s.created_at)


class TopicsServicer(tpb_grpc.TopicsServicer):
    def __init__(self, push) -> None:
        self.t = push.topics

    @_edge
    def CreateTopic(self, request, context):
        return tpb.Topic(name=request.name, arn=self.t.create(request.name))

    @_edge
    def ListTopics(self, request, context):
        return tpb.ListTopicsResponse(topics=[tpb.Topic(name=n, arn=topic_arn(n))
                                              for n in self.t.list()])

    @_edge
    def DeleteTopic(self, request, context):
        self.t.delete(request.name)
        return tpb.Topic(name=request.name, arn=topic_arn(request.name))

    @_edge
    def Subscribe(self, request, context):
        return subscription_pb(self.t.subscribe(
            request.topic, request.function, qualifier=request.qualifier,
            policy=_json(request.filter_policy_json, "filter_policy")))

    @_edge
    def ListSubscriptions(self, request, context):
        return tpb.ListSubscriptionsResponse(subscriptions=[
            subscription_pb(s) for s in self.t.subscriptions(request.name)])

    @_edge
    def Unsubscribe(self, request, context):
        return subscription_pb(self.t.unsubscribe(request.id))

    @_edge
    def Publish(self, request, context):
        out = self.t.publish(request.topic, request.message,
                             subject=request.subject if request.HasField("subject") else None,
                             attributes=_json(request.attributes_json, "attributes"))
        return tpb.PublishResponse(message_id=out["MessageId"],
                                   request_ids=[i["request_id"] for i in out["invocations"]])


def add_servicers(server, push) -> tuple[str, ...]:
    """Register the three services; returns their full names (health, reflection)."""
    spb_grpc.add_SchedulesServicer_to_server(SchedulesServicer(push), server)
    gpb_grpc.add_TriggersServicer_to_server(TriggersServicer(push), server)
    tpb_grpc.add_TopicsServicer_to_server(TopicsServicer(push), server)
    return SERVICES
