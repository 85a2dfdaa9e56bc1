"""`runner dlq list / replay`: a client of the Events gRPC service, for asynchronous events
that failed and were kept in the dead-letter store (docs/http-and-async.md).

The generated protobuf module is imported inside each command (client.py says why).
"""

from __future__ import annotations

import json

from runner.cli.client import add_address_argument, with_stubs


def _dlq_list(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    letters = stubs.events.ListDeadLetters(pb.ListDeadLettersRequest(name=args.name)).dead_letters
    if args.json:
        print(json.dumps([json.loads(d.record_json) for d in letters], indent=2))
        return 0
    print(f"{'REQUEST ID':<38} {'CONDITION':<18} {'ATTEMPTS':>8}  ERROR")
    for d in letters:
        rec = json.loads(d.record_json)
        ctx = rec.get("requestContext", {})
        # Only a record with an error document as its responsePayload fills the ERROR column; a
        # record with no function response (the event was never run) leaves it empty.
        err = rec.get("responsePayload") or {}
        err_text = f"{err.get('errorType', '')}: {err.get('errorMessage', '')}" if isinstance(err, dict) and err else ""
        print(f"{d.request_id:<38} {ctx.get('condition', ''):<18} {ctx.get('approximateInvokeCount', 0):>8}  {err_text}")
    return 0


def _dlq_replay(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    resp = stubs.events.ReplayDeadLetters(pb.ReplayDeadLettersRequest(name=args.name, request_ids=args.ids))
    # With nothing queued the line ends at "again", not "again: ".
    print(f"queued {len(resp.request_ids)} event(s) again: {' '.join(resp.request_ids)}".rstrip(": "))
    return 0


def add_commands(sub) -> None:
    dq = sub.add_parser("dlq", help="async events that failed: list and replay")
    dsub = dq.add_subparsers(dest="dlq_command", required=True)
    ls = dsub.add_parser("list", help="list a function's dead letters")
    add_address_argument(ls)
    ls.add_argument("name")
    ls.add_argument("--json", action="store_true", help="print the full destination records")
    ls.set_defaults(func=with_stubs(_dlq_list))
    rp = dsub.add_parser("replay", help="queue dead letters again (all, or the given request ids)")
    add_address_argument(rp)
    rp.add_argument("name")
    rp.add_argument("ids", nargs="*", metavar="ID")
    rp.set_defaults(func=with_stubs(_dlq_replay))
