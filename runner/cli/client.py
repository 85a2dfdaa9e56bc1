"""What every client command shares: the `--address` option, the gRPC channel and stubs, the
exit statuses, and the mapping from an exception to a platform error on stderr.

Exit status, for every command: 0 success; `EXIT_FUNCTION_ERROR` (1) the function failed (its
error document on stdout); `EXIT_PLATFORM_ERROR` (2) a platform error (not found, invalid
argument, throttled, unreachable server...), its message on stderr. The commands catch every
Exception around their calls on purpose: an RpcError, an OSError or a RunnerError from reading
the code alike end as exit 2 and one line on stderr, never a traceback a script cannot parse.

grpc, protobuf and the generated modules are imported inside the functions that use them, here
and in every command module of this package: building the parser must not load them, so
`runner --help` and argument errors stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner import settings

EXIT_FUNCTION_ERROR = 1
EXIT_PLATFORM_ERROR = 2

ADDRESS_HELP = f"server HOST:PORT (default $RUNNER_ADDRESS or {settings.DEFAULT_ADDRESS})"


def add_address_argument(parser) -> None:
    """`--address` on a client subcommand; the one place its help text is written."""
    parser.add_argument("--address", help=ADDRESS_HELP)


def address(args) -> str:
    """`--address`, else $RUNNER_ADDRESS, else the default (runner.settings)."""
    return args.address or settings.current().address


@dataclass
class Stubs:
    """One channel to the server and a stub per service on it; close with `with stubs.channel:`."""

    channel: Any
    functions: Any
    invoker: Any
    routes: Any
    events: Any


def connect(args) -> Stubs:
    """A channel to the server `args` names. grpc connects lazily, so an unreachable server
    surfaces as an RpcError at the first call, where `platform_error` reports it."""
    import grpc

    from runner.service.grpc.server import SERVER_OPTIONS
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc

    # The server's message-size limits (its first two options): a client that refused large
    # payloads or responses would fail calls the server accepts.
    channel = grpc.insecure_channel(address(args), options=SERVER_OPTIONS[:2])
    from runner import settings

    if settings.cluster_token():  # a server with a token refuses calls without it
        from runner.service.grpc.cluster import with_token

        channel = with_token(channel, settings.cluster_token())
    return Stubs(channel, pb_grpc.FunctionsStub(channel), pb_grpc.InvokerStub(channel),
                 pb_grpc.RoutesStub(channel), pb_grpc.EventsStub(channel))


def platform_error(exc) -> int:
    """Print `exc` (an RpcError, another exception or a message) on stderr; the exit status.

    An RpcError prints the server's error type (the trailing metadata service/grpc/status.py
    sets) or, failing that, the gRPC status code name: scripts match on that word.
    """
    import grpc

    from runner.service.grpc.status import ERROR_TYPE_KEY

    if isinstance(exc, grpc.RpcError):
        etype = dict(exc.trailing_metadata() or ()).get(ERROR_TYPE_KEY, exc.code().name)
        print(f"runner: {etype}: {exc.details()}", file=sys.stderr)
    else:
        print(f"runner: {exc}", file=sys.stderr)
    return EXIT_PLATFORM_ERROR


def with_stubs(call: Callable[[Any, Stubs], int]) -> Callable[[Any], int]:
    """A command `args -> exit status` that runs `call(args, stubs)` on a fresh channel, closes
    it, and reports any failure as a platform error."""
    def run(args) -> int:
        stubs = connect(args)
        with stubs.channel:
            try:
                return call(args, stubs)
            except Exception as exc:
                return platform_error(exc)
    return run


def info_dict(message) -> dict:
    """A protobuf message as the JSON the CLI prints: proto field names, defaults included."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)
