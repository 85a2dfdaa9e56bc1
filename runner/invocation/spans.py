"""Optional OpenTelemetry export (OTLP over HTTP) of an invocation's spans: `invoke`, its
`init` on a cold start, and an asynchronous event's `queue wait`.

Off unless RUNNER_OTLP_ENDPOINT names a collector (e.g. `http://127.0.0.1:4318`; spans go to
`<endpoint>/v1/traces`). Then every invocation makes one span, under the caller's trace when it
sent one (trace.py: the X-Ray Root is the W3C trace id, Parent the parent span), else a new
trace. The SDK is imported only then, so a server without a collector pays nothing, not even
the import. Spans are built from the invocation's report as it returns (tens of µs, only when
configured) and handed to the SDK's batch processor, which exports on its own thread: the
caller never waits for a collector, and one that is down loses spans, never invocations.

A provider per Runner, not the SDK's global one (as the metrics registry: several Runners in
one process keep their own).
"""

from __future__ import annotations

import logging
import re

from runner import settings
from runner.invocation.trace import fields

log = logging.getLogger(__name__)

_ROOT = re.compile(r"^1-([0-9a-f]{8})-([0-9a-f]{24})$")
_SPAN = re.compile(r"^[0-9a-f]{16}$")


class Spans:
    """The exporter of one Runner; `from_settings()` is None when no collector is configured."""

    def __init__(self, endpoint: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.endpoint = endpoint.rstrip("/") + "/v1/traces"
        self._provider = TracerProvider(resource=Resource.create({"service.name": "lambda-runner"}),
                                        shutdown_on_exit=False)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint)))
        self._tracer = self._provider.get_tracer("runner.invocation")

    @classmethod
    def from_settings(cls) -> "Spans | None":
        endpoint = settings.current().otlp_endpoint
        if not endpoint:
            return None
        try:
            return cls(endpoint)
        except ImportError as exc:  # the optional dependency is missing: say so, run on
            log.warning("RUNNER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not "
                        "installed (pip install opentelemetry-sdk "
                        "opentelemetry-exporter-otlp-proto-http): %s", exc)
            return None

    def _parent(self, trace_id: str | None):
        """The caller's span as the parent context, or None (a new trace)."""
        if not trace_id:
            return None
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            TraceFlags,
            set_span_in_context,
        )

        f = fields(trace_id)
        m = _ROOT.match(f.get("Root", ""))
        parent = f.get("Parent", "")
        if not m or not _SPAN.match(parent):
            return None
        sampled = TraceFlags.SAMPLED if f.get("Sampled", "1") != "0" else TraceFlags.DEFAULT
        ctx = SpanContext(int(m.group(1) + m.group(2), 16), int(parent, 16), is_remote=True,
                          trace_flags=TraceFlags(sampled))
        return set_span_in_context(NonRecordingSpan(ctx))

    def invocation(self, version, request_id: str, trace_id: str | None, report, error,
                   ended_ns: int) -> None:
        """The `invoke` span of an invocation that ran, with its `init` child on a cold start.
        `ended_ns`: time.time_ns() when it returned."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        run_ns = int(report.duration_ms * 1e6)
        init_ns = int((report.init_duration_ms or 0) * 1e6) if report.cold_start else 0
        start_ns = ended_ns - run_ns - init_ns
        attrs = {"faas.invocation_id": request_id, "faas.name": version.name,
                 "faas.version": version.version, "faas.coldstart": bool(report.cold_start),
                 "faas.max_memory": version.config.memory_mb * 1024 * 1024,
                 "cloud.resource_id": version.arn,
                 "runner.billed_duration_ms": report.billed_duration_ms,
                 "runner.max_memory_used_mb": report.max_memory_used_mb}
        span = self._tracer.start_span(f"invoke {version.name}", context=self._parent(trace_id),
                                       kind=SpanKind.SERVER, start_time=start_ns, attributes=attrs)
        if error is not None:
            span.set_attribute("error.type", error.error_type)
            span.set_status(Status(StatusCode.ERROR, error.error_type))
        if init_ns:
            from opentelemetry.trace import set_span_in_context

            child = self._tracer.start_span("init", context=set_span_in_context(span),
                                            start_time=start_ns)
            child.end(end_time=start_ns + init_ns)
        span.end(end_time=ended_ns)

    def queue_wait(self, function: str, request_id: str, trace_id: str | None,
                   enqueued_at: float, started_at: float) -> None:
        """An asynchronous event's wait in the queue, from acceptance to this attempt."""
        span = self._tracer.start_span(
            f"queue wait {function}", context=self._parent(trace_id),
            start_time=int(enqueued_at * 1e9),
            attributes={"faas.invocation_id": request_id, "faas.name": function,
                        "faas.trigger": "pubsub"})
        span.end(end_time=int(started_at * 1e9))

    def close(self) -> None:
        """Export what is buffered (bounded by the SDK's timeout), then stop."""
        try:
            self._provider.shutdown()
        except Exception:  # a collector gone at shutdown must not fail the stop
            log.debug("otlp: shutdown failed", exc_info=True)
