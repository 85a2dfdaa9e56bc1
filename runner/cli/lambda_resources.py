"""`runner alias create|update|get|list|delete` and `runner layer publish|get|list|delete`:
clients of the Aliases and Layers gRPC services (proto/lambda_resources.proto, issue 20).

    runner alias create FUNCTION ALIAS --version N [--weights N=0.1]
    runner layer publish NAME PATH [--compatible-runtimes python3.12 ...]

Generated modules are imported inside the commands (client.py says why).
"""

from __future__ import annotations

import json

from runner.cli.client import add_address_argument, info_dict, with_stubs
from runner.errors import InvalidParameter


def _stubs(stubs):
    from runner.service.proto import lambda_resources_pb2_grpc as lpb_grpc

    return lpb_grpc.AliasesStub(stubs.channel), lpb_grpc.LayersStub(stubs.channel)


def _weights(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        version, sep, weight = item.partition("=")
        try:
            out[version] = float(weight)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidParameter("--weights", f"{item!r}: use VERSION=WEIGHT, e.g. 2=0.1")
    return out


def _print(message) -> int:
    print(json.dumps(info_dict(message), indent=2))
    return 0


def _alias_create(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    aliases, _ = _stubs(stubs)
    return _print(aliases.CreateAlias(lpb.CreateAliasRequest(
        function=args.function, name=args.alias, version=args.version,
        weights=_weights(args.weights), description=args.description or "")))


def _alias_update(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    aliases, _ = _stubs(stubs)
    req = lpb.UpdateAliasRequest(function=args.function, name=args.alias,
                                 weights=_weights(args.weights),
                                 replace_weights=args.weights is not None,
                                 revision_id=args.revision_id or "")
    if args.version is not None:
        req.version = args.version
    if args.description is not None:
        req.description = args.description
    return _print(aliases.UpdateAlias(req))


def _alias_get(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    aliases, _ = _stubs(stubs)
    return _print(aliases.GetAlias(lpb.AliasRequest(function=args.function, name=args.alias)))


def _alias_list(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    aliases, _ = _stubs(stubs)
    found = aliases.ListAliases(lpb.ListAliasesRequest(function=args.function)).aliases
    print(json.dumps([info_dict(a) for a in found], indent=2))
    return 0


def _alias_delete(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    aliases, _ = _stubs(stubs)
    aliases.DeleteAlias(lpb.AliasRequest(function=args.function, name=args.alias))
    print(f"deleted alias {args.alias} of {args.function}")
    return 0


def _layer_publish(args, stubs) -> int:
    from runner.invocation.code_input import read_code
    from runner.service.proto import lambda_resources_pb2 as lpb

    _, layers = _stubs(stubs)
    return _print(layers.PublishLayer(lpb.PublishLayerRequest(
        name=args.name, content=read_code(args.path), description=args.description or "",
        compatible_runtimes=args.compatible_runtimes or [], license=args.license or "")))


def _layer_get(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    _, layers = _stubs(stubs)
    return _print(layers.GetLayerVersion(lpb.LayerVersionRequest(name=args.name,
                                                                 version=args.version)))


def _layer_list(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    _, layers = _stubs(stubs)
    found = layers.ListLayers(lpb.ListLayersRequest(name=args.name or "")).layers
    print(json.dumps([info_dict(lv) for lv in found], indent=2))
    return 0


def _layer_delete(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    _, layers = _stubs(stubs)
    layers.DeleteLayerVersion(lpb.LayerVersionRequest(name=args.name, version=args.version))
    print(f"deleted layer {args.name} version {args.version}")
    return 0


def add_commands(sub) -> None:
    al = sub.add_parser("alias", help="manage aliases (named pointers to published versions)")
    asub = al.add_subparsers(dest="alias_command", required=True)

    def alias_cmd(name, helptext, call):
        p = asub.add_parser(name, help=helptext)
        add_address_argument(p)
        p.add_argument("function")
        p.set_defaults(func=with_stubs(call))
        return p

    c = alias_cmd("create", "create an alias to a published version", _alias_create)
    c.add_argument("alias")
    c.add_argument("--version", required=True, help="a published version number")
    c.add_argument("--weights", action="append", metavar="N=W",
                   help="send share W (0..1) of invocations to version N")
    c.add_argument("--description")
    u = alias_cmd("update", "repoint an alias or change its routing", _alias_update)
    u.add_argument("alias")
    u.add_argument("--version")
    u.add_argument("--weights", action="append", metavar="N=W",
                   help="replace the routing (repeatable; leave out to keep it)")
    u.add_argument("--description")
    u.add_argument("--revision-id", metavar="ID", help="update only if still at this revision")
    alias_cmd("get", "show an alias", _alias_get).add_argument("alias")
    alias_cmd("list", "list a function's aliases", _alias_list)
    alias_cmd("delete", "delete an alias", _alias_delete).add_argument("alias")

    ly = sub.add_parser("layer", help="manage layers (shared code mounted at /opt)")
    lsub = ly.add_subparsers(dest="layer_command", required=True)
    p = lsub.add_parser("publish", help="publish a directory or zip as the layer's next version")
    add_address_argument(p)
    p.add_argument("name")
    p.add_argument("path", help="a directory (zipped for you) or a .zip")
    p.add_argument("--compatible-runtimes", nargs="+", metavar="RUNTIME")
    p.add_argument("--description")
    p.add_argument("--license")
    p.set_defaults(func=with_stubs(_layer_publish))
    for name, helptext, call in (("get", "show a layer version", _layer_get),
                                 ("delete", "delete a layer version", _layer_delete)):
        q = lsub.add_parser(name, help=helptext)
        add_address_argument(q)
        q.add_argument("name")
        q.add_argument("version", type=int)
        q.set_defaults(func=with_stubs(call))
    q = lsub.add_parser("list", help="list layers, or the versions of one")
    add_address_argument(q)
    q.add_argument("name", nargs="?")
    q.set_defaults(func=with_stubs(_layer_list))
