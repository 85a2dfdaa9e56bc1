"""`runner source add / list / get / update / enable / disable / delete`: event source mappings
(docs/event-sources.md), a client of the EventSources gRPC service.

Stable for scripts: `add` prints the mapping's UUID alone on stdout; `list` prints one line per
mapping (UUID, state, type, name, function), `--json` Lambda's documents; `get` prints
Lambda's document with the poller's observations under "Status". Exit statuses as client.py.
"""

from __future__ import annotations

import json

from runner.cli.client import add_address_argument, with_stubs

TYPES = ("redis-stream", "nats-jetstream", "postgres-table")


def _stub(stubs):
    from runner.service.proto import event_sources_pb2_grpc as pb_grpc

    return pb_grpc.EventSourcesStub(stubs.channel)


def _settings(args) -> dict:
    out = {
        "function": getattr(args, "function", None),
        "source_type": getattr(args, "type", None),
        "endpoint": getattr(args, "endpoint", None),
        "name": getattr(args, "name", None),
        "qualifier": getattr(args, "qualifier", None),
        "batch_size": args.batch_size,
        "batching_window_s": args.batching_window,
        "starting_position": getattr(args, "starting_position", None),
        "starting_timestamp": getattr(args, "starting_timestamp", None),
        "report_batch_item_failures": args.report_batch_item_failures,
        "bisect_on_error": args.bisect_on_error,
        "max_retries": args.max_retries,
        "max_record_age_s": args.max_record_age,
        "on_failure": args.on_failure,
        "parallelization": args.parallelization,
        "max_concurrency": args.max_concurrency,
        "filters": tuple(args.filter) if args.filter else None,
    }
    if getattr(args, "disabled", False):
        out["enabled"] = False
    return out


def _add(args, stubs) -> int:
    from runner.service.proto import event_sources_pb2 as pb
    from runner.sources.lambda_shape import settings_to_lambda

    m = _stub(stubs).Create(pb.CreateMappingRequest(lambda_json=json.dumps(settings_to_lambda(_settings(args)))))
    print(m.uuid)
    return 0


def _list(args, stubs) -> int:
    from runner.service.proto import event_sources_pb2 as pb

    found = _stub(stubs).List(pb.ListMappingsRequest(function=args.function or "")).mappings
    docs = [json.loads(m.lambda_json) for m in found]
    if args.json:
        print(json.dumps(docs, indent=2))
        return 0
    print(f"{'UUID':<36} {'STATE':<9} {'SOURCE':<56} FUNCTION")
    for d in docs:
        url = d["SelfManagedEventSource"]["Endpoints"]["URL"][0]
        source = f"{d['EventSourceArn'].rsplit(':', 1)[-1]} @ {url}"
        print(f"{d['UUID']:<36} {d['State']:<9} {source:<56} {d['FunctionArn'].split(':function:')[1]}")
    return 0


def _get(args, stubs) -> int:
    from runner.service.proto import event_sources_pb2 as pb

    m = _stub(stubs).Get(pb.GetMappingRequest(uuid=args.uuid))
    doc = json.loads(m.lambda_json)
    doc["Status"] = json.loads(m.status_json or "{}")
    print(json.dumps(doc, indent=2))
    return 0


def _update(args, stubs) -> int:
    from runner.service.proto import event_sources_pb2 as pb
    from runner.sources.lambda_shape import settings_to_lambda

    doc = settings_to_lambda(_settings(args))
    m = _stub(stubs).Update(pb.UpdateMappingRequest(uuid=args.uuid, lambda_json=json.dumps(doc)))
    print(m.uuid)
    return 0


def _enable(enabled: bool):
    def run(args, stubs) -> int:
        from runner.service.proto import event_sources_pb2 as pb

        m = _stub(stubs).Update(pb.UpdateMappingRequest(uuid=args.uuid, lambda_json=json.dumps({"Enabled": enabled})))
        print(f"{m.uuid} {json.loads(m.lambda_json)['State']}")
        return 0
    return run


def _delete(args, stubs) -> int:
    from runner.service.proto import event_sources_pb2 as pb

    m = _stub(stubs).Delete(pb.DeleteMappingRequest(uuid=args.uuid))
    print(f"deleted {m.uuid}")
    return 0


def _options(p, creating: bool) -> None:
    p.add_argument("--batch-size", type=int, help="records per invocation (Lambda's BatchSize)")
    p.add_argument("--batching-window", type=float, metavar="S", help="seconds to gather a batch (0-300)")
    p.add_argument("--report-batch-item-failures", action="store_const", const=True,
                   help="retry only the items named in batchItemFailures")
    p.add_argument("--bisect-on-error", action="store_const", const=True, help="split a failing batch in two")
    p.add_argument("--max-retries", type=int, metavar="N", help="retries of a failing record (-1: no limit)")
    p.add_argument("--max-record-age", type=int, metavar="S", help="give up older records (-1: no limit)")
    p.add_argument("--on-failure", metavar="TARGET",
                   help="function:NAME, or stream:NAME / subject:NAME / table:NAME on the same broker")
    p.add_argument("--parallelization", type=int, metavar="N", help="concurrent batches, order kept per key (1-10)")
    p.add_argument("--max-concurrency", type=int, metavar="N", help="ScalingConfig.MaximumConcurrency")
    p.add_argument("--filter", action="append", metavar="JSON", help="a FilterCriteria pattern (repeatable)")
    if creating:
        p.add_argument("--starting-position", choices=("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"))
        p.add_argument("--starting-timestamp", type=float, metavar="UNIX_S", help="with AT_TIMESTAMP")
        p.add_argument("--qualifier", help="version or alias to invoke (default $LATEST)")
        p.add_argument("--disabled", action="store_true", help="create it disabled")


def add_commands(sub) -> None:
    src = sub.add_parser("source", help="manage event source mappings (streams, queues, table changes)")
    ssub = src.add_subparsers(dest="source_command", required=True)

    add = ssub.add_parser("add", help="map a stream, subject or table to a function; prints the UUID")
    add_address_argument(add)
    add.add_argument("--function", required=True)
    add.add_argument("--type", required=True, choices=TYPES)
    add.add_argument("--endpoint", required=True, metavar="URL", help="redis://, nats:// or postgresql:// URL")
    add.add_argument("--name", required=True, metavar="STREAM|SUBJECT|TABLE")
    _options(add, creating=True)
    add.set_defaults(func=with_stubs(_add))

    ls = ssub.add_parser("list", help="list mappings")
    add_address_argument(ls)
    ls.add_argument("--function")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=with_stubs(_list))

    get = ssub.add_parser("get", help="a mapping: settings, state, last result, iterator age, counts")
    add_address_argument(get)
    get.add_argument("uuid")
    get.set_defaults(func=with_stubs(_get))

    up = ssub.add_parser("update", help="change a mapping's settings")
    add_address_argument(up)
    up.add_argument("uuid")
    up.add_argument("--function")
    _options(up, creating=False)
    up.set_defaults(func=with_stubs(_update))

    for name, enabled in (("enable", True), ("disable", False)):
        p = ssub.add_parser(name, help=f"{name} a mapping")
        add_address_argument(p)
        p.add_argument("uuid")
        p.set_defaults(func=with_stubs(_enable(enabled)))

    rm = ssub.add_parser("delete", help="delete a mapping (its records stay on the broker)")
    add_address_argument(rm)
    rm.add_argument("uuid")
    rm.set_defaults(func=with_stubs(_delete))
