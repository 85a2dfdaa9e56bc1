"""The gRPC edge: servicers for function management and invocation, plus the standard health
and reflection services, over one `Runner`.

Everything here is translation: parse the request, call the Runner, build the response, and
turn platform errors into status codes through the one table in status.py.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from runner.errors import InvalidParameter
from runner.invocation.runner import Runner
from runner.invocation.trace import from_headers
from runner.service import admission
from runner.service.admission import Slots
from runner.service.client_context import decode_client_context
from runner.service.grpc import convert, lambda_resources, usage
from runner.service.grpc.executor import RenewingPool
from runner.service.grpc.observe import meter_registrations, metered
from runner.service.grpc.status import abort
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a 50 MB code package plus framing
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
]


# Work after the response (the log block of an invocation, handed over by
# Runner.invoke_log_later as a PendingLog to write).

_after = threading.local()  # .work: what the RPC running on this thread deferred, or None


def after_response(fn) -> None:
    """Run `fn` once the current RPC's response is sent; at once outside an RPC run by the
    server's executor. The caller gets its answer without waiting for `fn` (an invocation's
    log write, microseconds that were on every invocation's latency)."""
    work = getattr(_after, "work", None)
    if work is None:
        fn()
    else:
        work.append(fn)


def _run_then_deferred(fn, args, kwargs):
    # grpcio's synchronous server sends a unary response from inside the callable it submits
    # (the handler returns, the response batch is started, then the callable returns), so
    # what runs after it is off the caller's critical path. Same thread, so no hand-off.
    _after.work = work = []
    try:
        return fn(*args, **kwargs)
    finally:
        _after.work = None
        for deferred in work:
            try:
                deferred()
            except Exception:
                log.exception("work deferred after a response failed")


class RpcExecutor(RenewingPool):
    """The server's thread pool (executor.py: renewed once a burst that grew it is over): each
    RPC, then what its handler deferred (after_response)."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_run_then_deferred, fn, args, kwargs)


def _edge(method):
    """Run a servicer method; any exception becomes a status via status.abort()."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:  # context.abort raises too; it is not caught twice
            abort(context, exc)

    return wrapper


def _trace(context) -> str | None:
    """The caller's trace from the metadata keys x-amzn-trace-id / traceparent (trace.py)."""
    amzn = parent = None
    metadata = context.invocation_metadata() if context is not None else ()  # (direct calls)
    for key, value in metadata or ():
        if key == "x-amzn-trace-id":
            amzn = value
        elif key == "traceparent":
            parent = value
    return from_headers(amzn, parent) if amzn or parent else None


class FunctionsServicer(pb_grpc.FunctionsServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _info(self, version) -> pb.FunctionInfo:
        return convert.function_info(version, self.runner.revision_id(version))

    @_edge
    def Deploy(self, request, context):
        settings = convert.config_settings(request.config)
        version = self.runner.deploy(request.name, request.code or None,
                                     revision_id=request.revision_id or None, **settings)
        return self._info(version)

    @_edge
    def GetFunction(self, request, context):
        return self._info(self.runner.get(request.name, request.qualifier or None))

    @_edge
    def ListFunctions(self, request, context):
        return pb.ListFunctionsResponse(functions=[self._info(v) for v in self.runner.list()])

    @_edge
    def DeleteFunction(self, request, context):
        removed = self.runner.delete(request.name)
        return pb.DeleteFunctionResponse(name=request.name, versions_deleted=len(removed))

    @_edge
    def PublishVersion(self, request, context):
        return self._info(self.runner.publish(request.name,
                                              revision_id=request.revision_id or None))

    @_edge
    def ListVersions(self, request, context):
        return pb.ListVersionsResponse(
            versions=[self._info(v) for v in self.runner.versions(request.name)])


# Invocations in flight up to which a log block is written after its response. Deferral
# helps while a CPU is idle to do the write as the caller reads its answer; under load the
# write costs the same CPU either way, and deferring it only keeps each worker thread busy a
# little longer, so the pool rotates through more threads (measured: -7% peak inv/s when
# always deferred; docs/decisions/037).
DEFER_LOGS_MAX_INFLIGHT = max(1, (os.cpu_count() or 2) // 2)


_INVOCATION_TYPES = frozenset(pb.InvocationType.values())
_LOG_TYPES = frozenset(pb.LogType.values())
_DRY_RUN, _EVENT, _LOG_TYPE_TAIL = pb.DRY_RUN, pb.EVENT, pb.LOG_TYPE_TAIL


class InvokerServicer(pb_grpc.InvokerServicer):
    def __init__(self, runner: Runner, invocations: Slots, followers: Slots,
                 forwarder=None) -> None:
        self.runner = runner
        self.forwarder = forwarder  # cluster.Forwarder: a function's calls go to its home node
        self.invocations = invocations  # synchronous invocations in flight (admission.py)
        self.followers = followers  # open --follow log streams

    @_edge
    def Invoke(self, request, context):
        # proto3 enums carry any number: refuse the undefined ones instead of running them as
        # the default (RequestResponse), as the HTTP edge refuses an unknown header value.
        # (Each field read once: a read of a protobuf field costs about as much as a call.)
        invocation_type = request.invocation_type
        if invocation_type not in _INVOCATION_TYPES:
            raise InvalidParameter("invocation_type", f"{invocation_type} is not one of "
                                   "REQUEST_RESPONSE (0), EVENT (1), DRY_RUN (2)")
        log_type = request.log_type
        if log_type not in _LOG_TYPES:
            raise InvalidParameter("log_type", f"{log_type} is not one of "
                                   "LOG_TYPE_NONE (0), LOG_TYPE_TAIL (1)")
        qualifier = request.qualifier or None
        trace_id = _trace(context)
        # Checked for every invocation type, as the HTTP edge checks the header; used by the
        # synchronous ones only (Lambda does not keep it for Event). A forwarded request
        # carries the field as it came.
        raw_context = request.client_context
        client_context = decode_client_context(raw_context, "client_context") if raw_context \
            else None
        if invocation_type == _DRY_RUN:
            self.runner.check_invoke(request.name, request.payload, qualifier=qualifier)
            return pb.InvokeResponse(status_code=204)
        if invocation_type == _EVENT:
            rid = self.runner.invoke_async(request.name, request.payload, qualifier=qualifier,
                                           trace_id=trace_id)
            return pb.InvokeResponse(status_code=202, request_id=rid)
        request_id = None  # a forwarding node's choice (an async event's id), else a new one
        if self.forwarder is not None:
            forwarded, request_id = self.forwarder.place(request, context)
            if forwarded is not None:
                return forwarded
        tail = log_type == _LOG_TYPE_TAIL
        with self.invocations:  # past the server's ceiling: TooManyRequests at once
            # On a quiet server the log block is written after the response (unless the
            # response carries its tail); see DEFER_LOGS_MAX_INFLIGHT. `held` counts this one.
            # Either way the call runs here (`placed`): the forwarder chose this node, or the
            # call came forwarded (one hop, decision 084).
            if self.invocations.held <= DEFER_LOGS_MAX_INFLIGHT and not tail:
                result, pending = self.runner.invoke_log_later(
                    request.name, request.payload, qualifier=qualifier, trace_id=trace_id,
                    client_context=client_context, request_id=request_id)
                after_response(pending.write)
            else:
                result = self.runner.invoke(request.name, request.payload, qualifier=qualifier,
                                            trace_id=trace_id, client_context=client_context,
                                            request_id=request_id, placed=True)
        return convert.invoke_response(result, tail=tail)

    def GetLogs(self, request, context):
        stop = threading.Event()
        context.add_callback(stop.set)
        try:
            if request.tail_lines < 0:
                raise InvalidParameter("tail_lines", "must be 0 (all) or a positive count")
            remote = self.forwarder.forward_logs(request, context) if self.forwarder else None
            if remote is not None:  # cluster: the function's logs are on its home node
                yield from remote
                return
            if not request.follow:
                for line in self.runner.read_logs(request.name, request.tail_lines):
                    yield pb.LogLine(line=line)
                return
            with self.followers:  # a follower holds its thread until the client leaves
                for line in self.runner.follow_logs(request.name, request.tail_lines, stop):
                    yield pb.LogLine(line=line)
        except Exception as exc:
            abort(context, exc)


# HTTP routes and async dead letters (docs/http-and-async.md).


class RoutesServicer(pb_grpc.RoutesServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @_edge
    def AddRoute(self, request, context):
        return convert.route(self.runner.add_route(
            request.method, request.path, request.function, request.qualifier))

    @_edge
    def ListRoutes(self, request, context):
        return pb.ListRoutesResponse(routes=[convert.route(r) for r in self.runner.list_routes()])

    @_edge
    def DeleteRoute(self, request, context):
        return convert.route(self.runner.delete_route(request.method, request.path))


class EventsServicer(pb_grpc.EventsServicer):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @_edge
    def ListDeadLetters(self, request, context):
        letters = self.runner.dead_letters(request.name)
        return pb.ListDeadLettersResponse(dead_letters=[convert.dead_letter(d) for d in letters])

    @_edge
    def ReplayDeadLetters(self, request, context):
        ids = self.runner.replay_dead_letters(request.name, list(request.request_ids) or None)
        return pb.ReplayDeadLettersResponse(request_ids=ids)


def build_server(runner: Runner, host: str = "127.0.0.1", port: int = 50051,
                 sync_invocations: int = admission.SYNC_INVOCATIONS,
                 log_followers: int = admission.LOG_FOLLOWERS,
                 executor_cls: type = RpcExecutor, push=None, workflows=None, *, cluster=None,
                 token: str = "", reuse_port: bool = False) -> tuple[grpc.Server, int]:
    """A configured, not yet started server and the port it bound (useful with port=0).
    With `push` (service/push.py), also the Schedules, Triggers and Topics services.
    `sync_invocations` and `log_followers` are the ceilings of admission.py; the RPC pool
    holds both plus admission.RESERVE threads for everything else. `executor_cls` is the RPC
    thread pool's class (bench/burst_bench.py compares pools). Cluster (docs/cluster.md):
    `cluster` forwards invocations to their home node (grpc/cluster.py), `token` is required
    of every call, `reuse_port` lets the nodes of `--workers N` share the port."""
    workers = sync_invocations + log_followers + admission.RESERVE
    options = [o for o in SERVER_OPTIONS if o[0] != "grpc.so_reuseport"] + [
        ("grpc.so_reuseport", 1 if reuse_port else 0)]
    interceptors = []
    if token:
        from runner.service.grpc.cluster import TokenInterceptor

        interceptors.append(TokenInterceptor(
            token, meter=lambda handler, method: metered(handler, method, runner)))
    server = grpc.server(executor_cls(max_workers=workers, thread_name_prefix="rpc"),
                         options=options, interceptors=interceptors)
    meter_registrations(server, runner)  # RPC metrics, wrapped once per method (issue 22)
    pb_grpc.add_FunctionsServicer_to_server(FunctionsServicer(runner), server)
    invocations = admission.Slots(sync_invocations, "synchronous invocations")
    pb_grpc.add_InvokerServicer_to_server(InvokerServicer(
        runner, invocations, admission.Slots(log_followers, "log streams (--follow)"), cluster),
        server)
    pb_grpc.add_RoutesServicer_to_server(RoutesServicer(runner), server)
    pb_grpc.add_EventsServicer_to_server(EventsServicer(runner), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [
        pb.DESCRIPTOR.services_by_name["Functions"].full_name,
        pb.DESCRIPTOR.services_by_name["Invoker"].full_name,
        pb.DESCRIPTOR.services_by_name["Routes"].full_name,
        pb.DESCRIPTOR.services_by_name["Events"].full_name,
        usage.add_to_server(runner, server),  # issue 22
    ]
    if push is not None:  # push events (issue 19: docs/events.md)
        from runner.service.grpc.push import add_servicers
        names += add_servicers(server, push)
    if workflows is not None:  # the Step Functions operations (issue 21)
        from runner.service.grpc.workflows import add_to_server

        names.append(add_to_server(workflows, server))
    names += lambda_resources.add_to_server(runner, server)  # aliases, layers (issue 20)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME], server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio 1.8x raises where older versions returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} (in use?); pick another --port")
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    server.invocations = invocations  # type: ignore[attr-defined]  # a cluster node's load
    return server, bound
