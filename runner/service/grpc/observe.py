"""RPC metrics: every call counted by method and status code, with its latency
(runner_rpc_requests_total, runner_rpc_duration_seconds; docs/observability.md).

Unary calls are timed from the handler's start to its return (the response is then sent by
grpcio); streaming responses are counted when the stream ends, and their latency is the
stream's whole life, so `GetLogs --follow` is kept out of the latency histogram.

Each method's handler is wrapped once, when its service is registered on the server
(`meter_registrations`), not per call: a grpcio server interceptor runs on every RPC (its
pipeline, our `intercept_service`, a new handler tuple and closure each time; decision 085),
and an invocation paid for that on the server's polling thread.
"""

from __future__ import annotations

import time

import grpc


def meter_registrations(server: grpc.Server, runner) -> grpc.Server:
    """Make every service registered on `server` from now on (by build_server or later, as
    `runner serve` adds the event sources) count its calls in `runner.metrics`. Returns
    `server`. The metrics are read at each call: a Runner built with metrics=False (or
    switched, as bench/metrics_bench.py does) skips the counting."""
    add_generic = server.add_generic_rpc_handlers
    add_registered = server.add_registered_method_handlers

    def add_generic_rpc_handlers(handlers):
        add_generic(tuple(_MeteredGeneric(h, runner) for h in handlers))

    def add_registered_method_handlers(service, method_handlers):
        add_registered(service, {name: metered(handler, name, runner)
                                 for name, handler in method_handlers.items()})

    server.add_generic_rpc_handlers = add_generic_rpc_handlers
    server.add_registered_method_handlers = add_registered_method_handlers
    return server


class _MeteredGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come back metered, each wrapped once."""

    def __init__(self, inner: grpc.GenericRpcHandler, runner) -> None:
        self._inner, self._runner = inner, runner
        self._wrapped: dict[str, tuple] = {}  # full method -> (inner handler, metered one)

    def service(self, handler_call_details):
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        full = handler_call_details.method
        known = self._wrapped.get(full)
        if known is None or known[0] is not handler:
            known = self._wrapped[full] = (handler, metered(handler, full.rsplit("/", 1)[-1],
                                                            self._runner))
        return known[1]


def metered(handler: grpc.RpcMethodHandler, method: str, runner) -> grpc.RpcMethodHandler:
    """`handler` counting its calls as `method` in runner.metrics (unary and server-streaming
    responses; other shapes are returned as they are)."""
    if handler.unary_unary is not None:
        inner = handler.unary_unary

        def unary(request, context):
            metrics = runner.metrics
            if not metrics.enabled:
                return inner(request, context)
            t0 = time.perf_counter()
            code = "OK"
            try:
                return inner(request, context)
            except BaseException:
                code = _code(context)
                raise
            finally:
                metrics.rpc(method, code, time.perf_counter() - t0)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        def stream(request, context):
            metrics = runner.metrics
            if not metrics.enabled:
                yield from inner_stream(request, context)
                return
            code = "OK"
            try:
                yield from inner_stream(request, context)
            except BaseException:
                code = _code(context)
                raise
            finally:
                metrics.rpc(method, code, None)

        return grpc.unary_stream_rpc_method_handler(
            stream, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    return handler


def _code(context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
