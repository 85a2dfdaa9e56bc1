"""`runner route add / list / delete`: a client of the Routes gRPC service (HTTP routes,
METHOD PATH -> FUNCTION, served by `serve --http-port`).

The generated protobuf module is imported inside each command (client.py says why).
"""

from __future__ import annotations

import json

from runner.cli.client import add_address_argument, info_dict, with_stubs


def _target(route) -> str:
    """FUNCTION, or FUNCTION:QUALIFIER when the route pins a version or alias."""
    return route.function + (f":{route.qualifier}" if route.qualifier else "")


def _route_add(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    r = stubs.routes.AddRoute(pb.AddRouteRequest(method=args.method, path=args.path,
                                                 function=args.function, qualifier=args.qualifier or ""))
    print(f"{r.route_key} -> {_target(r)}")
    return 0


def _route_list(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    routes = stubs.routes.ListRoutes(pb.ListRoutesRequest()).routes
    if args.json:
        print(json.dumps([info_dict(r) for r in routes], indent=2))
        return 0
    print(f"{'METHOD':<8} {'PATH':<40} FUNCTION")
    for r in routes:
        print(f"{r.method:<8} {r.path:<40} {_target(r)}")
    return 0


def _route_delete(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    r = stubs.routes.DeleteRoute(pb.DeleteRouteRequest(method=args.method, path=args.path))
    print(f"deleted {r.route_key}")
    return 0


def add_commands(sub) -> None:
    rt = sub.add_parser("route", help="manage HTTP routes (METHOD PATH -> FUNCTION)")
    rsub = rt.add_subparsers(dest="route_command", required=True)

    add = rsub.add_parser("add", help="add or repoint a route")
    add_address_argument(add)
    _method_and_path(add)
    add.add_argument("function")
    add.add_argument("--qualifier", help="version or alias (default $LATEST)")
    add.set_defaults(func=with_stubs(_route_add))

    ls = rsub.add_parser("list", help="list routes")
    add_address_argument(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=with_stubs(_route_list))

    rm = rsub.add_parser("delete", help="delete a route")
    add_address_argument(rm)
    _method_and_path(rm)
    rm.set_defaults(func=with_stubs(_route_delete))


def _method_and_path(parser) -> None:
    parser.add_argument("method", help="GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY")
    parser.add_argument("path", help="e.g. /items/{id} or /files/{proxy+}")
