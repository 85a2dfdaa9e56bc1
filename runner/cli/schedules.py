"""`runner schedule add|list|get|update|enable|disable|delete|dropped`: a client of the
Schedules gRPC service (proto/schedules.proto; docs/events.md)."""

from __future__ import annotations

from datetime import datetime, timezone

from runner.cli.client import add_address_argument
from runner.cli.push_client import json_arg, print_json, with_push_stub

FIELDS = {"function": "function", "expression": "expression", "timezone": "timezone",
          "input": "input", "flexible_window": "flexible_window_min",
          "max_retries": "max_retries", "max_event_age": "max_event_age_s",
          "dead_letter": "dead_letter", "qualifier": "qualifier", "start": "start_at",
          "end": "end_at"}


def _when(text: str) -> float:
    """An ISO 8601 time (UTC unless it says otherwise) as unix seconds."""
    dt = datetime.fromisoformat(text)
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def _message(args, name: str):
    from runner.service.proto import schedules_pb2 as spb

    m = spb.Schedule(name=name)
    for opt, field in FIELDS.items():
        v = getattr(args, opt, None)
        if v is None:
            continue
        if opt == "input":
            m.input_json = json_arg(v, "--input")
        elif opt in ("start", "end"):
            setattr(m, field, _when(v))
        else:
            setattr(m, field, v)
    return m


def _add(args, stub) -> int:
    return print_json(stub.AddSchedule(_message(args, args.name)))


def _update(args, stub) -> int:
    from runner.service.proto import schedules_pb2 as spb

    fields = [f for o, f in FIELDS.items() if getattr(args, o, None) is not None]
    if not fields:
        raise SystemExit("runner: schedule update: nothing to change; give an option")
    fields = ["input" if f == "input_json" else f for f in fields]
    return print_json(stub.UpdateSchedule(spb.UpdateScheduleRequest(
        schedule=_message(args, args.name), fields=fields)))


def _enable(value: bool):
    def run(args, stub) -> int:
        from runner.service.proto import schedules_pb2 as spb

        s = spb.Schedule(name=args.name, enabled=value)
        return print_json(stub.UpdateSchedule(spb.UpdateScheduleRequest(schedule=s,
                                                                         fields=["enabled"])))
    return run


def _get(args, stub) -> int:
    from runner.service.proto import schedules_pb2 as spb

    return print_json(stub.GetSchedule(spb.ScheduleName(name=args.name)))


def _delete(args, stub) -> int:
    from runner.service.proto import schedules_pb2 as spb

    s = stub.DeleteSchedule(spb.ScheduleName(name=args.name))
    print(f"deleted {s.name}")
    return 0


def _dropped(args, stub) -> int:
    from runner.service.proto import schedules_pb2 as spb

    return print_json(stub.ListDroppedSlots(spb.ScheduleName(name=args.name)))


def _list(args, stub) -> int:
    from runner.service.proto import schedules_pb2 as spb

    out = stub.ListSchedules(spb.ListSchedulesRequest())
    if args.json:
        return print_json(out)
    print(f"{'NAME':<24} {'FUNCTION':<20} {'ENABLED':<8} {'NEXT (UTC)':<20} EXPRESSION")
    for s in out.schedules:
        nxt = datetime.fromtimestamp(s.next_slot, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") \
            if s.HasField("next_slot") else "-"
        print(f"{s.name:<24} {s.function:<20} {str(s.enabled).lower():<8} {nxt:<20} "
              f"{s.expression} {s.timezone}")
    return 0


def _settings(p, required: bool) -> None:
    p.add_argument("--function", required=required)
    p.add_argument("--expression", required=required,
                   help="cron(m h dom mon dow y), rate(N minutes|hours|days) or at(...)")
    p.add_argument("--timezone", help="IANA name, e.g. Europe/Paris (default UTC)")
    p.add_argument("--input", help="JSON: the Scheduled Event's detail")
    p.add_argument("--flexible-window", type=int, metavar="MIN")
    p.add_argument("--max-retries", type=int)
    p.add_argument("--max-event-age", type=int, metavar="S",
                   help="slots missed longer than this are dropped (default 86400)")
    p.add_argument("--dead-letter", metavar="TARGET")
    p.add_argument("--qualifier")
    p.add_argument("--start", help="ISO 8601 start (UTC unless it has an offset)")
    p.add_argument("--end", help="ISO 8601 end")


def add_commands(sub) -> None:
    sc = sub.add_parser("schedule", help="manage schedules (cron, rate, at -> FUNCTION)")
    ssub = sc.add_subparsers(dest="schedule_command", required=True)
    a = ssub.add_parser("add", help="add a schedule")
    a.add_argument("name")
    _settings(a, True)
    u = ssub.add_parser("update", help="change a schedule's settings")
    u.add_argument("name")
    _settings(u, False)
    ls = ssub.add_parser("list", help="list schedules")
    ls.add_argument("--json", action="store_true")
    parsers = [(a, _add), (u, _update), (ls, _list)]
    for cmd, fn, text in (("get", _get, "show a schedule"), ("delete", _delete, "delete one"),
                          ("enable", _enable(True), "resume a schedule (from now)"),
                          ("disable", _enable(False), "pause a schedule"),
                          ("dropped", _dropped, "slots that were not delivered, and why")):
        p = ssub.add_parser(cmd, help=text)
        p.add_argument("name")
        parsers.append((p, fn))
    for p, fn in parsers:
        add_address_argument(p)
        p.set_defaults(func=with_push_stub("schedules", fn))
