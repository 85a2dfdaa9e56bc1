"""`runner deploy / invoke / list / get / delete / publish / logs`: clients of the Functions and
Invoker gRPC services.

The generated protobuf module is imported inside each command, never at module level
(client.py says why: the parser must not load grpc).
"""

from __future__ import annotations

import json
import sys

from runner.cli.client import (
    EXIT_FUNCTION_ERROR,
    EXIT_PLATFORM_ERROR,
    add_address_argument,
    connect,
    info_dict,
    platform_error,
    with_stubs,
)
from runner.invocation.code_input import read_code


def cmd_deploy(args) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    env = {}
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"runner: --env {item!r}: use KEY=VALUE", file=sys.stderr)
            return EXIT_PLATFORM_ERROR
        env[key] = value
    try:
        code = read_code(args.path) if args.path else None
    except Exception as exc:
        return platform_error(exc)
    # --env replaces the whole environment; without it the server keeps the function's own.
    cfg = pb.FunctionConfig(runtime=args.runtime or "", handler=args.handler or "", environment=env,
                            replace_environment=bool(args.env))
    # Only the options given are set: an unset field keeps the function's current value.
    for field, value in (("memory_mb", args.memory), ("timeout_s", args.timeout),
                         ("concurrency", args.concurrency), ("provisioned", args.provisioned),
                         ("ephemeral_storage_mb", args.ephemeral_storage)):
        if value is not None:
            setattr(cfg, field, value)
    if args.network is not None:  # a policy (issue 19); --no-network is "none"
        cfg.network_policy = args.network
    for field, value in (("max_retries", args.max_retries), ("max_event_age_s", args.max_event_age),
                         ("on_success", args.on_success), ("on_failure", args.on_failure),
                         ("description", args.description), ("role", args.role),
                         ("log_format", args.log_format),
                         ("application_log_level", args.application_log_level),
                         ("system_log_level", args.system_log_level)):
        if value is not None:
            setattr(cfg, field, value)
    if args.layer is not None:  # issue 20: --layer ARN (repeatable); --layer '' removes them all
        cfg.layers.extend(a for a in args.layer if a)
        cfg.replace_layers = True
    stubs = connect(args)
    with stubs.channel:
        try:
            info = stubs.functions.Deploy(pb.DeployRequest(name=args.name, config=cfg, code=code or b"",
                                                           revision_id=args.revision_id or ""))
        except Exception as exc:
            return platform_error(exc)
    print(json.dumps(info_dict(info), indent=2))
    return 0


def cmd_invoke(args) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    if args.payload is not None and args.payload_file:
        print("runner: give --payload or --payload-file, not both", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    payload = args.payload.encode() if args.payload is not None else b""
    if args.payload_file:
        try:
            with open(args.payload_file, "rb") as f:
                payload = f.read()
        except OSError as exc:
            return platform_error(f"--payload-file: {exc.strerror}")
    itype = {"RequestResponse": pb.REQUEST_RESPONSE, "Event": pb.EVENT, "DryRun": pb.DRY_RUN}[args.invocation_type]
    req = pb.InvokeRequest(name=args.name, qualifier=args.qualifier or "", payload=payload,
                           invocation_type=itype, client_context=args.client_context or "",
                           log_type=pb.LOG_TYPE_TAIL if args.log_type.lower() == "tail" else pb.LOG_TYPE_NONE)
    stubs = connect(args)
    with stubs.channel:
        try:
            resp = stubs.invoker.Invoke(req)
        except Exception as exc:
            return platform_error(exc)
    # Event (202) and DryRun (204) return no payload: print Lambda's status document instead.
    if resp.status_code in (202, 204):
        print(json.dumps({"StatusCode": resp.status_code, "RequestId": resp.request_id}))
        return 0
    # The payload is the function's bytes, written as they are (not decoded and re-encoded).
    sys.stdout.buffer.write(resp.payload + b"\n")
    sys.stdout.flush()
    if req.log_type == pb.LOG_TYPE_TAIL:
        sys.stderr.write(resp.log_result.decode("utf-8", "replace"))
    return EXIT_FUNCTION_ERROR if resp.function_error else 0


def _list(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    resp = stubs.functions.ListFunctions(pb.ListFunctionsRequest())
    if args.json:
        print(json.dumps([info_dict(f) for f in resp.functions], indent=2))
        return 0
    print(f"{'NAME':<24} {'RUNTIME':<8} {'HANDLER':<20} {'MEMORY':>6} {'TIMEOUT':>7} {'REVISION':>8}")
    for f in resp.functions:
        c = f.config
        print(f"{f.name:<24} {c.runtime:<8} {c.handler:<20} {c.memory_mb:>6} {c.timeout_s:>7g} {f.revision:>8}")
    return 0


def _get(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    info = stubs.functions.GetFunction(pb.GetFunctionRequest(name=args.name, qualifier=args.qualifier or ""))
    print(json.dumps(info_dict(info), indent=2))
    return 0


def _delete(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    resp = stubs.functions.DeleteFunction(pb.DeleteFunctionRequest(name=args.name))
    print(f"deleted {resp.name} ({resp.versions_deleted} versions)")
    return 0


def _publish(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    req = pb.PublishVersionRequest(name=args.name, revision_id=args.revision_id or "")
    print(json.dumps(info_dict(stubs.functions.PublishVersion(req)), indent=2))
    return 0


def _logs(args, stubs) -> int:
    from runner.service.proto import runner_api_pb2 as pb

    stream = stubs.invoker.GetLogs(pb.GetLogsRequest(name=args.name, follow=args.follow, tail_lines=args.lines))
    try:
        for line in stream:
            print(line.line, flush=args.follow)
    except KeyboardInterrupt:
        # Ctrl-C ends `logs --follow`: cancel the stream so the server stops sending, exit 0.
        stream.cancel()
    return 0


def add_commands(sub) -> None:
    def client(name, help_text):
        c = sub.add_parser(name, help=help_text)
        add_address_argument(c)
        return c

    d = client("deploy", "create or update a function")
    d.add_argument("name")
    d.add_argument("path", nargs="?", help="a directory, a zip, or a .wasm module (omit to keep the code)")
    d.add_argument("--runtime", help="python | nodejs | wasm (or python3.11, nodejs20.x)")
    d.add_argument("--handler", help="python: module.function; nodejs: file.export; wasm: _start or an export")
    d.add_argument("--memory", type=int, help="MB, 128..10240")
    d.add_argument("--timeout", type=float, help="seconds, 1..900")
    d.add_argument("--env", action="append", metavar="K=V", help="environment variable (repeatable)")
    d.add_argument("--concurrency", type=int, help="max concurrent environments")
    d.add_argument("--provisioned", type=int, help="environments kept initialised")
    d.add_argument("--ephemeral-storage", type=int, help="MB of private /tmp")
    d.add_argument("--network", nargs="?", const="full", default=None, metavar="POLICY",
                   help="egress: none (default) | full (the outside world, never the host's "
                   "loopback) | allow=IP:PORT[,IP:PORT...] (exactly those); bare --network = full")
    d.add_argument("--no-network", dest="network", action="store_const", const="none",
                   help="no network (the same as --network none)")
    d.add_argument("--max-retries", type=int, help="async: retries after a function error, 0..2")
    d.add_argument("--max-event-age", type=int, metavar="SECONDS",
                   help="async: give up events older than this, 60..21600")
    d.add_argument("--on-success", metavar="FUNCTION", help="async: send success records to FUNCTION ('' = none)")
    d.add_argument("--on-failure", metavar="FUNCTION|dlq",
                   help="async: send failure records to FUNCTION or the dead-letter store ('' = none)")
    d.add_argument("--log-format", choices=("Text", "JSON"), help="Lambda's LogFormat")
    d.add_argument("--application-log-level", metavar="LEVEL",
                   help="JSON logs: TRACE DEBUG INFO WARN ERROR FATAL ('' = INFO)")
    d.add_argument("--system-log-level", metavar="LEVEL", help="JSON logs: DEBUG INFO WARN ('' = INFO)")
    d.add_argument("--revision-id", metavar="ID",
                   help="update only if this is still the function's revision_id (from get)")
    d.add_argument("--layer", action="append", metavar="ARN",
                   help="layer version ARN, mounted at /opt in order (repeatable, max 5; '' = none)")
    d.add_argument("--role", help="execution role (a name or ARN)")
    d.add_argument("--description", help="free text shown by get")
    d.set_defaults(func=cmd_deploy)

    i = client("invoke", "invoke a function")
    i.add_argument("name")
    i.add_argument("--payload", help="the event, as JSON")
    i.add_argument("--payload-file", help="read the event from a file")
    i.add_argument("--qualifier", help="version number or alias")
    i.add_argument("--log-type", default="None", choices=["None", "Tail", "tail", "none"])
    i.add_argument("--invocation-type", default="RequestResponse",
                   choices=["RequestResponse", "Event", "DryRun"])
    i.add_argument("--client-context",
                   help="base64 of a JSON object for the handler's context.client_context "
                        "(as Lambda's X-Amz-Client-Context; synchronous invocations only)")
    i.set_defaults(func=cmd_invoke)

    lst = client("list", "list functions")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=with_stubs(_list))
    g = client("get", "show a function")
    g.add_argument("name")
    g.add_argument("--qualifier")
    g.set_defaults(func=with_stubs(_get))
    rm = client("delete", "delete a function")
    rm.add_argument("name")
    rm.set_defaults(func=with_stubs(_delete))
    pub = client("publish", "publish $LATEST as a numbered version")
    pub.add_argument("name")
    pub.add_argument("--revision-id", metavar="ID",
                     help="publish only if this is still the function's revision_id (from get)")
    pub.set_defaults(func=with_stubs(_publish))
    lg = client("logs", "print a function's logs")
    lg.add_argument("name")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    lg.add_argument("--lines", "-n", type=int, default=0, help="last N lines (0 = all kept)")
    lg.set_defaults(func=with_stubs(_logs))
