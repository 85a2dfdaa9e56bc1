"""RPC metrics: a server interceptor counting every call by method and status code, with its
latency (runner_rpc_requests_total, runner_rpc_duration_seconds; docs/observability.md).

Unary calls are timed from the handler's start to its return (the response is then sent by
grpcio); streaming responses are counted when the stream ends, and their latency is the
stream's whole life, so `GetLogs --follow` is kept out of the latency histogram.
"""

from __future__ import annotations

import time

import grpc


class MetricsInterceptor(grpc.ServerInterceptor):
    """Reads the runner's metrics at each call: a Runner built with metrics=False (or switched,
    as bench/metrics_bench.py does) is served without the wrapper at all."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        metrics = self.runner.metrics
        if handler is None or not metrics.enabled:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        record = metrics.rpc
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request, context):
                t0 = time.perf_counter()
                code = "OK"
                try:
                    return inner(request, context)
                except BaseException:
                    code = _code(context)
                    raise
                finally:
                    record(method, code, time.perf_counter() - t0)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def stream(request, context):
                code = "OK"
                try:
                    yield from inner_stream(request, context)
                except BaseException:
                    code = _code(context)
                    raise
                finally:
                    metrics.families.rpc_requests.labels(method, code).inc()

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler


def _code(context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
