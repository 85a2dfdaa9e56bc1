"""The `runner` command: a thin client of the gRPC API, plus `serve`.

Exit status: 0 success; 1 the function failed (its error document on stdout); 2 a platform error
(not found, invalid argument, throttled, unreachable server...), message on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from runner import settings

DEFAULT_PORT = 50051
EXIT_FUNCTION_ERROR = 1
EXIT_PLATFORM_ERROR = 2


def _address(args) -> str:
    return args.address or settings.current().address


# ---------------------------------------------------------------------------- serve


def cmd_serve(args) -> int:
    from runner.cli.examples import default_guests_dir, deploy_examples
    from runner.invocation.runner import Runner, default_data_dir
    from runner.service.grpc.server import build_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = args.data_dir or default_data_dir()
    runner = Runner(data_dir, idle_ttl_s=args.idle_ttl, max_environments=args.max_environments,
                    async_workers=args.async_workers, async_retry_base_s=args.retry_delay)
    if args.examples is not None:
        root = args.examples or default_guests_dir()
        if root is None:
            print("runner: --examples: no guests/ directory found; pass its path", file=sys.stderr)
            return EXIT_PLATFORM_ERROR
        names = deploy_examples(runner, root)
        print(f"deployed {len(names)} example functions: {', '.join(names)}", flush=True)
    try:
        server, port = build_server(runner, args.host, args.port)
    except OSError as exc:
        runner.close()
        print(f"runner: {exc}", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    server.start()
    print(f"listening on {args.host}:{port} (data in {data_dir})", flush=True)
    # HTTP front (docs/http-and-async.md).
    http_front = None
    if args.http_port is not None:
        from runner.service.http import HttpFront

        try:
            http_front = HttpFront(runner, args.host, args.http_port, grace=args.grace)
        except OSError as exc:
            server.stop(grace=0).wait()
            runner.close()
            print(f"runner: {exc}", file=sys.stderr)
            return EXIT_PLATFORM_ERROR
        http_front.start()
        print(f"http listening on {args.host}:{http_front.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("shutting down: finishing in-flight invocations", flush=True)
    server.health_servicer.enter_graceful_shutdown()
    # Grace covers the longest invocation Lambda allows to finish; new RPCs are refused at once.
    if http_front is not None:
        http_front.stop()
    server.stop(grace=args.grace).wait()
    runner.close()
    print("stopped", flush=True)
    return 0


# ---------------------------------------------------------------------------- client side


def _stubs(args):
    import grpc

    from runner.service.grpc.server import SERVER_OPTIONS
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(_address(args), options=SERVER_OPTIONS[:2])
    return channel, pb_grpc.FunctionsStub(channel), pb_grpc.InvokerStub(channel)


def _platform_error(exc) -> int:
    import grpc

    from runner.service.grpc.status import ERROR_TYPE_KEY

    if isinstance(exc, grpc.RpcError):
        etype = dict(exc.trailing_metadata() or ()).get(ERROR_TYPE_KEY, exc.code().name)
        print(f"runner: {etype}: {exc.details()}", file=sys.stderr)
    else:
        print(f"runner: {exc}", file=sys.stderr)
    return EXIT_PLATFORM_ERROR


def _info_dict(info) -> dict:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(info, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def cmd_deploy(args) -> int:
    from runner.invocation.runner import read_code
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
        return _platform_error(exc)
    cfg = pb.FunctionConfig(runtime=args.runtime or "", handler=args.handler or "", environment=env,
                            replace_environment=bool(args.env))
    for field, value in (("memory_mb", args.memory), ("timeout_s", args.timeout),
                         ("concurrency", args.concurrency), ("provisioned", args.provisioned),
                         ("ephemeral_storage_mb", args.ephemeral_storage)):
        if value is not None:
            setattr(cfg, field, value)
    if args.network is not None:
        cfg.network = args.network
    for field, value in (("max_retries", args.max_retries), ("max_event_age_s", args.max_event_age),
                         ("on_success", args.on_success), ("on_failure", args.on_failure)):
        if value is not None:
            setattr(cfg, field, value)
    channel, functions, _ = _stubs(args)
    with channel:
        try:
            info = functions.Deploy(pb.DeployRequest(name=args.name, config=cfg, code=code or b""))
        except Exception as exc:
            return _platform_error(exc)
    print(json.dumps(_info_dict(info), indent=2))
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
            return _platform_error(f"--payload-file: {exc.strerror}")
    itype = {"RequestResponse": pb.REQUEST_RESPONSE, "Event": pb.EVENT, "DryRun": pb.DRY_RUN}[args.invocation_type]
    req = pb.InvokeRequest(name=args.name, qualifier=args.qualifier or "", payload=payload,
                           invocation_type=itype,
                           log_type=pb.LOG_TYPE_TAIL if args.log_type.lower() == "tail" else pb.LOG_TYPE_NONE)
    channel, _, invoker = _stubs(args)
    with channel:
        try:
            resp = invoker.Invoke(req)
        except Exception as exc:
            return _platform_error(exc)
    if resp.status_code in (202, 204):
        print(json.dumps({"StatusCode": resp.status_code, "RequestId": resp.request_id}))
        return 0
    sys.stdout.buffer.write(resp.payload + b"\n")
    sys.stdout.flush()
    if req.log_type == pb.LOG_TYPE_TAIL:
        sys.stderr.write(resp.log_result.decode("utf-8", "replace"))
    return EXIT_FUNCTION_ERROR if resp.function_error else 0


def _simple(call):
    def run(args) -> int:
        channel, functions, invoker = _stubs(args)
        with channel:
            try:
                return call(args, functions, invoker)
            except Exception as exc:
                return _platform_error(exc)
    return run


def _list(args, functions, _):
    from runner.service.proto import runner_api_pb2 as pb

    resp = functions.ListFunctions(pb.ListFunctionsRequest())
    if args.json:
        print(json.dumps([_info_dict(f) for f in resp.functions], indent=2))
        return 0
    print(f"{'NAME':<24} {'RUNTIME':<8} {'HANDLER':<20} {'MEMORY':>6} {'TIMEOUT':>7} {'REVISION':>8}")
    for f in resp.functions:
        c = f.config
        print(f"{f.name:<24} {c.runtime:<8} {c.handler:<20} {c.memory_mb:>6} {c.timeout_s:>7g} {f.revision:>8}")
    return 0


def _get(args, functions, _):
    from runner.service.proto import runner_api_pb2 as pb

    info = functions.GetFunction(pb.GetFunctionRequest(name=args.name, qualifier=args.qualifier or ""))
    print(json.dumps(_info_dict(info), indent=2))
    return 0


def _delete(args, functions, _):
    from runner.service.proto import runner_api_pb2 as pb

    resp = functions.DeleteFunction(pb.DeleteFunctionRequest(name=args.name))
    print(f"deleted {resp.name} ({resp.versions_deleted} versions)")
    return 0


def _publish(args, functions, _):
    from runner.service.proto import runner_api_pb2 as pb

    print(json.dumps(_info_dict(functions.PublishVersion(pb.PublishVersionRequest(name=args.name))), indent=2))
    return 0


def _logs(args, _, invoker):
    from runner.service.proto import runner_api_pb2 as pb

    stream = invoker.GetLogs(pb.GetLogsRequest(name=args.name, follow=args.follow, tail_lines=args.lines))
    try:
        for line in stream:
            print(line.line, flush=args.follow)
    except KeyboardInterrupt:
        stream.cancel()
    return 0


# ---------------------------------------------------------------------------- doctor


def cmd_doctor(args) -> int:
    """Print which protections this host gives guests; exit 1 if any is off (scriptable)."""
    from runner.confinement import doctor

    rows = doctor.rows()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(doctor.format_table(rows))
    return 0 if all(r.enabled for r in rows) else 1


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runner", description="A self-hosted, Lambda-style function runner.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    s.add_argument("--data-dir", help="registry, code and logs (default: a per-user data directory)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    s.add_argument("--examples", nargs="?", const="", default=None, metavar="DIR",
                   help="deploy the example functions (from DIR, default the repository's guests/)")
    s.add_argument("--idle-ttl", type=float, default=300.0, help="seconds an idle environment is kept")
    s.add_argument("--max-environments", type=int, default=256, help="host-wide environment limit")
    s.add_argument("--grace", type=float, default=30.0, help="seconds to finish in-flight work on stop")
    s.add_argument("--http-port", type=int, default=None, metavar="PORT",
                   help="also serve HTTP (Invoke API and function routes) on HOST:PORT (0 = any)")
    s.add_argument("--async-workers", type=int, default=4, help="concurrent asynchronous invocations")
    s.add_argument("--retry-delay", type=float, default=60.0, metavar="SECONDS",
                   help="wait before the first retry of a failed async event (doubles after)")
    s.set_defaults(func=cmd_serve)

    def client(name, help_text):
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--address", help="server HOST:PORT (default $RUNNER_ADDRESS or 127.0.0.1:50051)")
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
    d.add_argument("--network", action=argparse.BooleanOptionalAction, default=None,
                   help="allow outbound network")
    d.add_argument("--max-retries", type=int, help="async: retries after a function error, 0..2")
    d.add_argument("--max-event-age", type=int, metavar="SECONDS",
                   help="async: give up events older than this, 60..21600")
    d.add_argument("--on-success", metavar="FUNCTION", help="async: send success records to FUNCTION ('' = none)")
    d.add_argument("--on-failure", metavar="FUNCTION|dlq",
                   help="async: send failure records to FUNCTION or the dead-letter store ('' = none)")
    d.set_defaults(func=cmd_deploy)

    i = client("invoke", "invoke a function")
    i.add_argument("name")
    i.add_argument("--payload", help="the event, as JSON")
    i.add_argument("--payload-file", help="read the event from a file")
    i.add_argument("--qualifier", help="version number or alias")
    i.add_argument("--log-type", default="None", choices=["None", "Tail", "tail", "none"])
    i.add_argument("--invocation-type", default="RequestResponse",
                   choices=["RequestResponse", "Event", "DryRun"])
    i.set_defaults(func=cmd_invoke)

    lst = client("list", "list functions")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_simple(_list))
    g = client("get", "show a function")
    g.add_argument("name")
    g.add_argument("--qualifier")
    g.set_defaults(func=_simple(_get))
    rm = client("delete", "delete a function")
    rm.add_argument("name")
    rm.set_defaults(func=_simple(_delete))
    pub = client("publish", "publish $LATEST as a numbered version")
    pub.add_argument("name")
    pub.set_defaults(func=_simple(_publish))
    lg = client("logs", "print a function's logs")
    lg.add_argument("name")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    lg.add_argument("--lines", "-n", type=int, default=0, help="last N lines (0 = all kept)")
    lg.set_defaults(func=_simple(_logs))
    from runner.cli.routes import add_route_and_dlq_commands  # routes, dead letters

    add_route_and_dlq_commands(sub)

    doc = sub.add_parser("doctor", help="show which isolation protections this host supports")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse fills an optional positional (deploy's PATH) at the first positional chunk, so
    # `deploy NAME --env K=V PATH` leaves PATH over; take it here rather than reject it.
    if extra and getattr(args, "command", None) == "deploy" and args.path is None \
            and len(extra) == 1 and not extra[0].startswith("-"):
        args.path, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
