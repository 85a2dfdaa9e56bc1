"""`runner trigger add|list|get|delete`: a client of the Triggers gRPC service
(proto/triggers.proto; object-store notifications, docs/events.md)."""

from __future__ import annotations

from runner.cli.client import add_address_argument
from runner.cli.push_client import print_json, with_push_stub


def _add(args, stub) -> int:
    from runner.service.proto import triggers_pb2 as gpb

    if args.type != "s3":
        raise SystemExit(f"runner: --type: {args.type!r} is not supported; use s3")
    return print_json(stub.AddTrigger(gpb.Trigger(
        name=args.name, function=args.function, bucket=args.bucket, events=args.events or [],
        prefix=args.prefix or "", suffix=args.suffix or "", qualifier=args.qualifier or "")))


def _list(args, stub) -> int:
    from runner.service.proto import triggers_pb2 as gpb

    out = stub.ListTriggers(gpb.ListTriggersRequest())
    if args.json:
        return print_json(out)
    print(f"{'NAME':<24} {'BUCKET':<20} {'FUNCTION':<20} FILTER")
    for t in out.triggers:
        print(f"{t.name:<24} {t.bucket:<20} {t.function:<20} {','.join(t.events)} "
              f"prefix={t.prefix!r} suffix={t.suffix!r}")
    return 0


def _get(args, stub) -> int:
    from runner.service.proto import triggers_pb2 as gpb

    return print_json(stub.GetTrigger(gpb.TriggerName(name=args.name)))


def _delete(args, stub) -> int:
    from runner.service.proto import triggers_pb2 as gpb

    print(f"deleted {stub.DeleteTrigger(gpb.TriggerName(name=args.name)).name}")
    return 0


def add_commands(sub) -> None:
    tr = sub.add_parser("trigger", help="manage object-store triggers (bucket -> FUNCTION)")
    tsub = tr.add_subparsers(dest="trigger_command", required=True)
    a = tsub.add_parser("add", help="invoke a function for each matching object event")
    a.add_argument("name")
    a.add_argument("--function", required=True)
    a.add_argument("--type", default="s3", help="s3 (the only type)")
    a.add_argument("--bucket", required=True)
    a.add_argument("--events", nargs="+", metavar="TYPE",
                   help="e.g. 's3:ObjectCreated:*' (default) 's3:ObjectRemoved:Delete'")
    a.add_argument("--prefix")
    a.add_argument("--suffix")
    a.add_argument("--qualifier")
    ls = tsub.add_parser("list", help="list triggers")
    ls.add_argument("--json", action="store_true")
    g = tsub.add_parser("get", help="show a trigger")
    g.add_argument("name")
    d = tsub.add_parser("delete", help="delete a trigger")
    d.add_argument("name")
    for p, fn in ((a, _add), (ls, _list), (g, _get), (d, _delete)):
        add_address_argument(p)
        p.set_defaults(func=with_push_stub("triggers", fn))
