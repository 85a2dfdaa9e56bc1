"""The Prometheus metric families, on a registry the runner owns (never the process-global one:
two Runners in one process, as tests make, must not count into each other).

Names follow Prometheus' conventions (`_total` counters, `_seconds` units) and map one-to-one
to Lambda's CloudWatch metrics; the table is in docs/observability.md. Labels are bounded:
`function` (a deployed function's name: unknown names are refused before anything is counted),
`version` (the executed version), `outcome` (five values), `reason`, `state`, `runtime`, and for
the edges `method`/`code`. Never a request id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# 1 ms to Lambda's 15 min, coarser than the dashboard's minute buckets (storage/
# metric_series.py) so that a function costs few series: 10 bounds + +Inf + _sum + _count.
DURATION_BUCKETS_S = (0.001, 0.005, 0.025, 0.1, 0.25, 1.0, 5.0, 30.0, 120.0, 900.0)
INIT_BUCKETS_S = (0.1, 1.0, 10.0)
AGE_BUCKETS_S = (0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 21600.0)
EDGE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0, 30.0)

OUTCOMES = ("success", "function_error", "timeout", "out_of_memory", "throttled")


class Families:
    """The families kept by prometheus-client itself, registered on `self.registry`. The
    invocation families (lambda_invocations_total, _errors_, _throttles_, _duration_seconds,
    _init_duration_seconds, _cold_starts_, _concurrent_executions, _billed_gb_seconds_) are
    plain counts under one lock in recorder.py, rendered at scrape time: prometheus-client's
    objects take a lock per update, ~1 µs each, and a warm invoke made a dozen of them."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # Usage as Lambda prices it (on-demand GB-seconds: recorder.py).
        self.provisioned_gb_seconds = Counter(
            "lambda_provisioned_gb_seconds", "Provisioned environments x memory x time, "
            "GB-seconds", ["function"], registry=r)
        # Asynchronous invocation.
        self.async_received = Counter("lambda_async_events_received", "Events accepted "
                                      "(CloudWatch AsyncEventsReceived)", ["function"], registry=r)
        self.async_age = Histogram("lambda_async_event_age_seconds", "Age of an event when it "
                                   "runs (CloudWatch AsyncEventAge)", ["function"],
                                   buckets=AGE_BUCKETS_S, registry=r)
        self.async_dropped = Counter("lambda_async_events_dropped", "Events discarded "
                                     "(CloudWatch AsyncEventsDropped)", ["function", "reason"],
                                     registry=r)
        self.async_retries = Counter("lambda_async_retries", "Failed attempts scheduled "
                                     "again", ["function"], registry=r)
        self.dead_letters = Counter("lambda_dead_letters", "Events written to the dead-letter "
                                    "store", ["function"], registry=r)
        self.dead_letter_errors = Counter("lambda_dead_letter_errors", "Dead-letter writes that "
                                          "failed (CloudWatch DeadLetterErrors)", ["function"],
                                          registry=r)
        self.destination_failures = Counter(
            "lambda_destination_delivery_failures", "Destination records that could not be "
            "delivered (CloudWatch DestinationDeliveryFailures)", ["function"], registry=r)
        # Event source mappings and workflows (counted by those packages when present).
        self.source_batches = Counter("runner_source_batches", "Batches handed to a function",
                                      ["mapping", "function", "outcome"], registry=r)
        self.source_records = Counter("runner_source_records", "Records in those batches",
                                      ["mapping", "function"], registry=r)
        self.iterator_age = Gauge("runner_source_iterator_age_seconds", "Age of the last "
                                  "record read (CloudWatch IteratorAge)", ["mapping"], registry=r)
        self.workflow_executions = Counter(
            "runner_workflow_executions", "Workflow executions by status (started, succeeded, "
            "failed, timed_out, aborted)", ["workflow", "status"], registry=r)
        # The edges' families (runner_rpc_*, runner_http_*) are counted in recorder.py too.
