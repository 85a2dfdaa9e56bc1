"""The gRPC edge: servicers for function management and invocation, plus the standard health
and reflection services, over one `Runner`.

Everything here is translation: parse the request, call the Runner, build the response, and
turn platform errors into status codes through the one table in status.py.
"""

from __future__ import annotations

import functools
import logging
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from runner.api import Runner
from runner.errors import InvalidParameter
from runner.service import convert
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc
from runner.service.status import abort

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a 50 MB code package plus framing
DEFAULT_WORKERS = 64  # concurrent RPCs; invocations block a worker for their whole duration
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
]


def _edge(method):
    """Run a servicer method; any exception becomes a status via status.abort()."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:  # context.abort raises too; it is not caught twice
            abort(context, exc)

    return wrapper


class FunctionsServicer(pb_grpc.FunctionsServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @_edge
    def Deploy(self, request, context):
        settings = convert.config_settings(request.config)
        version = self.runner.deploy(request.name, request.code or None, **settings)
        return convert.function_info(version)

    @_edge
    def GetFunction(self, request, context):
        return convert.function_info(self.runner.get(request.name, request.qualifier or None))

    @_edge
    def ListFunctions(self, request, context):
        return pb.ListFunctionsResponse(
            functions=[convert.function_info(v) for v in self.runner.list()])

    @_edge
    def DeleteFunction(self, request, context):
        removed = self.runner.delete(request.name)
        return pb.DeleteFunctionResponse(name=request.name, versions_deleted=len(removed))

    @_edge
    def PublishVersion(self, request, context):
        return convert.function_info(self.runner.publish(request.name))

    @_edge
    def ListVersions(self, request, context):
        return pb.ListVersionsResponse(
            versions=[convert.function_info(v) for v in self.runner.versions(request.name)])


class InvokerServicer(pb_grpc.InvokerServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @_edge
    def Invoke(self, request, context):
        qualifier = request.qualifier or None
        if request.invocation_type == pb.DRY_RUN:
            self.runner.check_invoke(request.name, request.payload, qualifier=qualifier)
            return pb.InvokeResponse(status_code=204)
        if request.invocation_type == pb.EVENT:
            rid = self.runner.invoke_async(request.name, request.payload, qualifier=qualifier)
            return pb.InvokeResponse(status_code=202, request_id=rid)
        result = self.runner.invoke(request.name, request.payload, qualifier=qualifier)
        return convert.invoke_response(result, tail=request.log_type == pb.LOG_TYPE_TAIL)

    def GetLogs(self, request, context):
        stop = threading.Event()
        context.add_callback(stop.set)
        try:
            if request.tail_lines < 0:
                raise InvalidParameter("tail_lines", "must be 0 (all) or a positive count")
            lines = (self.runner.follow_logs(request.name, request.tail_lines, stop)
                     if request.follow else self.runner.read_logs(request.name, request.tail_lines))
            for line in lines:
                yield pb.LogLine(line=line)
        except Exception as exc:
            abort(context, exc)


# --- HTTP routes and async dead letters (docs/http-and-async.md) ---


class RoutesServicer(pb_grpc.RoutesServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @_edge
    def AddRoute(self, request, context):
        return convert.route(self.runner.routes.add(
            request.method, request.path, request.function, request.qualifier))

    @_edge
    def ListRoutes(self, request, context):
        return pb.ListRoutesResponse(routes=[convert.route(r) for r in self.runner.routes.list()])

    @_edge
    def DeleteRoute(self, request, context):
        return convert.route(self.runner.routes.delete(request.method, request.path))


class EventsServicer(pb_grpc.EventsServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @_edge
    def ListDeadLetters(self, request, context):
        letters = self.runner.events.dead_letters(request.name)
        return pb.ListDeadLettersResponse(dead_letters=[convert.dead_letter(d) for d in letters])

    @_edge
    def ReplayDeadLetters(self, request, context):
        ids = self.runner.async_invoker.replay(request.name, list(request.request_ids) or None)
        return pb.ReplayDeadLettersResponse(request_ids=ids)


# --- end HTTP routes and async dead letters ---


def build_server(runner: Runner, host: str = "127.0.0.1", port: int = 50051,
                 max_workers: int = DEFAULT_WORKERS) -> tuple[grpc.Server, int]:
    """A configured, not yet started server and the port it bound (useful with port=0)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="rpc"),
                         options=SERVER_OPTIONS)
    pb_grpc.add_FunctionsServicer_to_server(FunctionsServicer(runner), server)
    pb_grpc.add_InvokerServicer_to_server(InvokerServicer(runner), server)
    pb_grpc.add_RoutesServicer_to_server(RoutesServicer(runner), server)
    pb_grpc.add_EventsServicer_to_server(EventsServicer(runner), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [
        pb.DESCRIPTOR.services_by_name["Functions"].full_name,
        pb.DESCRIPTOR.services_by_name["Invoker"].full_name,
        pb.DESCRIPTOR.services_by_name["Routes"].full_name,
        pb.DESCRIPTOR.services_by_name["Events"].full_name,
    ]
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} (in use?); pick another --port")
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    return server, bound
