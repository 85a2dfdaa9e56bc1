"""The Usage gRPC service (proto/metrics.proto): requests and GB-seconds per function per
day, from the minute series (runner/metrics/views.py). `runner usage` is its client."""

from __future__ import annotations

import time

from runner.metrics import views
from runner.service.grpc.status import abort
from runner.service.proto import metrics_pb2 as mpb
from runner.service.proto import metrics_pb2_grpc as mpb_grpc

DEFAULT_SINCE_S = 7 * 86400


class UsageServicer(mpb_grpc.UsageServicer):
    def __init__(self, runner) -> None:
        self.runner = runner

    def GetUsage(self, request, context):
        try:
            return self._usage(request)
        except Exception as exc:  # the one error -> status path (status.py)
            abort(context, exc)

    def _usage(self, request) -> mpb.UsageResponse:
        since = min(request.since_s or DEFAULT_SINCE_S, views.MAX_WINDOW_S)
        rows = views.daily(self.runner.series, self.runner.metrics.minutes, max(60, since))
        return mpb.UsageResponse(rows=[mpb.UsageRow(
            day=time.strftime("%Y-%m-%d", time.gmtime(s.minute)), function=s.function,
            requests=s.invocations, errors=s.errors, throttles=s.throttles,
            gb_seconds=s.gb_seconds, provisioned_gb_seconds=s.provisioned_gb_seconds)
            for s in rows])


def add_to_server(runner, server) -> str:
    """Register the service; returns its full name (for health and reflection)."""
    mpb_grpc.add_UsageServicer_to_server(UsageServicer(runner), server)
    return mpb.DESCRIPTOR.services_by_name["Usage"].full_name
