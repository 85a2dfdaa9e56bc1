"""`runner role create|update|get|list|delete`: execution roles, a client of the Roles gRPC
service (issue 20). A role's secrets are sent once and never printed back.

    runner role create NAME --access-key-id ID --secret-access-key KEY \\
        [--session-token T] [--endpoint-url URL] [--s3-endpoint-url URL]
    runner role create NAME --from-file creds.json     # keeps secrets off the command line

The file is JSON: {"AccessKeyId", "SecretAccessKey", "SessionToken"} (what `aws sts
assume-role` prints, at the top level or under "Credentials"), plus optional "EndpointUrl"
and "S3EndpointUrl". Options given on the command line win over the file.
"""

from __future__ import annotations

import json

from runner.cli.client import add_address_argument, info_dict, with_stubs
from runner.errors import InvalidParameter

_FILE_KEYS = {"AccessKeyId": "access_key_id", "SecretAccessKey": "secret_access_key",
              "SessionToken": "session_token", "EndpointUrl": "endpoint_url",
              "S3EndpointUrl": "s3_endpoint_url"}
FIELDS = tuple(_FILE_KEYS.values())


def _fields(args) -> dict[str, str]:
    out: dict[str, str] = {}
    if args.from_file:
        try:
            with open(args.from_file) as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            raise InvalidParameter("--from-file", f"cannot read {args.from_file!r}: {exc}") from None
        doc = doc.get("Credentials", doc) if isinstance(doc, dict) else None
        if not isinstance(doc, dict):
            raise InvalidParameter("--from-file", "must hold a JSON object")
        out.update({field: str(doc[key]) for key, field in _FILE_KEYS.items() if key in doc})
    out.update({f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None})
    return out


def _stub(stubs):
    from runner.service.proto import lambda_resources_pb2_grpc as lpb_grpc

    return lpb_grpc.RolesStub(stubs.channel)


def _show(message) -> int:
    print(json.dumps(info_dict(message), indent=2))
    return 0


def _create(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    return _show(_stub(stubs).CreateRole(lpb.CreateRoleRequest(name=args.name, **_fields(args))))


def _update(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    return _show(_stub(stubs).UpdateRole(lpb.UpdateRoleRequest(name=args.name, **_fields(args))))


def _get(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    return _show(_stub(stubs).GetRole(lpb.RoleRequest(name=args.name)))


def _list(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    roles = _stub(stubs).ListRoles(lpb.ListRolesRequest()).roles
    print(json.dumps([info_dict(r) for r in roles], indent=2))
    return 0


def _delete(args, stubs) -> int:
    from runner.service.proto import lambda_resources_pb2 as lpb

    _stub(stubs).DeleteRole(lpb.RoleRequest(name=args.name))
    print(f"deleted role {args.name}")
    return 0


def add_commands(sub) -> None:
    r = sub.add_parser("role", help="manage execution roles (credentials functions get)")
    rsub = r.add_subparsers(dest="role_command", required=True)
    for name, helptext, call, takes_fields in (
            ("create", "register a role", _create, True),
            ("update", "change or rotate a role's values", _update, True),
            ("get", "show a role (never its secrets)", _get, False),
            ("delete", "delete a role", _delete, False)):
        p = rsub.add_parser(name, help=helptext)
        add_address_argument(p)
        p.add_argument("name")
        if takes_fields:
            for field in FIELDS:
                p.add_argument("--" + field.replace("_", "-"), dest=field)
            p.add_argument("--from-file", metavar="JSON", help="credentials from a file")
        p.set_defaults(func=with_stubs(call))
    ls = rsub.add_parser("list", help="list roles")
    add_address_argument(ls)
    ls.set_defaults(func=with_stubs(_list))
