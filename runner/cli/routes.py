"""`runner route ...` and `runner dlq ...`: clients of the Routes and Events gRPC services.

Kept apart from cli.py so the route and dead-letter commands can change without touching the
core commands; the conventions (exit status, error printing, --address) are cli.py's.
"""

from __future__ import annotations

import json

from runner.cli.main import _info_dict, _platform_error, _stubs


def _route_add(args):
    from runner.service.proto import runner_api_pb2 as pb

    stub = _extra_stub(args, "RoutesStub")
    r = stub.AddRoute(pb.AddRouteRequest(method=args.method, path=args.path,
                                         function=args.function, qualifier=args.qualifier or ""))
    print(f"{r.route_key} -> {r.function}" + (f":{r.qualifier}" if r.qualifier else ""))
    return 0


def _route_list(args):
    from runner.service.proto import runner_api_pb2 as pb

    routes = _extra_stub(args, "RoutesStub").ListRoutes(pb.ListRoutesRequest()).routes
    if args.json:
        print(json.dumps([_info_dict(r) for r in routes], indent=2))
        return 0
    print(f"{'METHOD':<8} {'PATH':<40} FUNCTION")
    for r in routes:
        print(f"{r.method:<8} {r.path:<40} {r.function}" + (f":{r.qualifier}" if r.qualifier else ""))
    return 0


def _route_delete(args):
    from runner.service.proto import runner_api_pb2 as pb

    r = _extra_stub(args, "RoutesStub").DeleteRoute(pb.DeleteRouteRequest(method=args.method, path=args.path))
    print(f"deleted {r.route_key}")
    return 0


def _dlq_list(args):
    from runner.service.proto import runner_api_pb2 as pb

    letters = _extra_stub(args, "EventsStub").ListDeadLetters(pb.ListDeadLettersRequest(name=args.name)).dead_letters
    if args.json:
        print(json.dumps([json.loads(d.record_json) for d in letters], indent=2))
        return 0
    print(f"{'REQUEST ID':<38} {'CONDITION':<18} {'ATTEMPTS':>8}  ERROR")
    for d in letters:
        rec = json.loads(d.record_json)
        ctx = rec.get("requestContext", {})
        err = rec.get("responsePayload") or {}
        err_text = f"{err.get('errorType', '')}: {err.get('errorMessage', '')}" if isinstance(err, dict) and err else ""
        print(f"{d.request_id:<38} {ctx.get('condition', ''):<18} {ctx.get('approximateInvokeCount', 0):>8}  {err_text}")
    return 0


def _dlq_replay(args):
    from runner.service.proto import runner_api_pb2 as pb

    resp = _extra_stub(args, "EventsStub").ReplayDeadLetters(
        pb.ReplayDeadLettersRequest(name=args.name, request_ids=args.ids))
    print(f"queued {len(resp.request_ids)} event(s) again: {' '.join(resp.request_ids)}".rstrip(": "))
    return 0


def _extra_stub(args, name: str):
    """A stub for the Routes/Events services on the channel `_simple` opened (args._channel)."""
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc

    return getattr(pb_grpc, name)(args._channel)


def _with_channel(call):
    def run(args) -> int:
        channel, _, _ = _stubs(args)
        args._channel = channel
        with channel:
            try:
                return call(args)
            except Exception as exc:
                return _platform_error(exc)
    return run


def add_route_and_dlq_commands(sub) -> None:
    rt = sub.add_parser("route", help="manage HTTP routes (METHOD PATH -> FUNCTION)")
    rsub = rt.add_subparsers(dest="route_command", required=True)
    for name, help_text in (("add", "add or repoint a route"), ("list", "list routes"),
                            ("delete", "delete a route")):
        c = rsub.add_parser(name, help=help_text)
        c.add_argument("--address", help="server HOST:PORT (default $RUNNER_ADDRESS or 127.0.0.1:50051)")
        if name in ("add", "delete"):
            c.add_argument("method", help="GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY")
            c.add_argument("path", help="e.g. /items/{id} or /files/{proxy+}")
        if name == "add":
            c.add_argument("function")
            c.add_argument("--qualifier", help="version or alias (default $LATEST)")
        if name == "list":
            c.add_argument("--json", action="store_true")
        c.set_defaults(func=_with_channel({"add": _route_add, "list": _route_list,
                                           "delete": _route_delete}[name]))
    dq = sub.add_parser("dlq", help="async events that failed: list and replay")
    dsub = dq.add_subparsers(dest="dlq_command", required=True)
    ls = dsub.add_parser("list", help="list a function's dead letters")
    ls.add_argument("--address", help="server HOST:PORT (default $RUNNER_ADDRESS or 127.0.0.1:50051)")
    ls.add_argument("name")
    ls.add_argument("--json", action="store_true", help="print the full destination records")
    ls.set_defaults(func=_with_channel(_dlq_list))
    rp = dsub.add_parser("replay", help="queue dead letters again (all, or the given request ids)")
    rp.add_argument("--address", help="server HOST:PORT (default $RUNNER_ADDRESS or 127.0.0.1:50051)")
    rp.add_argument("name")
    rp.add_argument("ids", nargs="*", metavar="ID")
    rp.set_defaults(func=_with_channel(_dlq_replay))
