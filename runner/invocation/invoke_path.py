"""The invoke path: one invocation from its payload to its record, as the Runner runs it.

Each step calls down a layer: validate the payload -> resolve the version (cached; an alias
with weights picks one per invocation, lambda_resources.py) -> lease an environment from the
pool (cold start if none idle; an init failure comes back as pool.InitFailure) -> invoke ->
give the environment back -> check the response size -> make the report and the log block
(log_block.py) -> write the block, or hand it to the caller to write after its response
(invoke_log_later).

Placement in a cluster (decision 084): `remote_invoke`, when a cluster's wiring sets it
(cli/cluster_serve.py hands it the gRPC edge's forwarder; this layer receives a callable and
imports nothing above it), runs `invoke()` of a function with reserved concurrency at the
function's home node, wherever the call arose (the HTTP edge, the async dispatcher, mappings,
workflows): the home's pool alone then holds the limit. The check is one attribute of the
version already resolved, so an unreserved function's warm path pays nothing more. The hook
answers None to run here (this node is the home, or the home is unreachable and this node is
next in order). `placed=True` says the caller chose the node already (the gRPC edge, whose
forwarder routed the call or received it forwarded): never a second hop.

`InvokePath` is mixed into Runner, as LambdaResources is: it uses the Runner's `pool`, `logs`,
`contexts`, `metrics` and `spans`, and its `resolve_for_invoke`. A mixin, not an object the
Runner holds and calls: a warm invocation then makes no call more than when these methods
were the Runner's own.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

from runner.environments.base import InvokeRequest
from runner.errors import EnvironmentGone, ResponseSizeTooLarge, TooManyRequests
from runner.invocation.log_block import LogBlock, PendingLog
from runner.invocation.trace import report_suffix
from runner.invocation_record import InvocationResult, Report, check_payload, new_request_id
from runner.model import MAX_PAYLOAD_BYTES, MB, FunctionVersion
from runner.pool.base import InitFailure


class InvokePath:
    pool: Any
    logs: Any
    contexts: Any
    metrics: Any
    spans: Any
    resolve_for_invoke: Callable[[str, str | None], FunctionVersion]
    # (version, body, qualifier, request_id, trace_id, client_context) -> the home node's
    # result, or None to run here; raises the platform error the home refused with.
    remote_invoke: Callable[..., InvocationResult | None] | None = None

    def invoke(
        self,
        name: str,
        payload: bytes | str | None = None,
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        client_context: dict | None = None,
        trace_id: str | None = None,
        placed: bool = False,
    ) -> InvocationResult:
        """Invoke synchronously. Platform errors raise; function errors are in the result. The
        invocation's log block is written before this returns; the result's `log` has it.
        `client_context` (Lambda's X-Amz-Client-Context, decoded) reaches the handler's
        context.client_context / clientContext; `trace_id`, the caller's X-Amzn-Trace-Id
        (trace.py), is handed to the guest. In a cluster a reserved function's call runs at
        its home node unless `placed` (module docstring); its result's `log` is then the
        home's last 4 KB of the block, which is written there."""
        body = check_payload(payload)
        version = self.resolve_for_invoke(name, qualifier)
        if version.config.concurrency_reserved and not placed and self.remote_invoke is not None:
            result = self.remote_invoke(version, body, qualifier, request_id, trace_id,
                                        client_context)
            if result is not None:
                return result
        block, out = self._run(version, body, qualifier, request_id, trace_id, client_context)
        return _result(block, out, block.write().encode())

    def invoke_stream(
        self,
        name: str,
        payload: bytes | str | None,
        sink: Callable[[bytes], None],
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        started: Callable[[str], None] | None = None,
    ) -> InvocationResult:
        """InvokeWithResponseStream (decision 075): as `invoke()`, but the response goes to
        `sink`, a chunk at a time, as the handler writes it (a Node handler wrapped in
        `awslambda.streamifyResponse`); a handler that does not stream has its whole response
        given to `sink` once, at the end. `sink` runs on the thread reading the guest, so it
        must hand chunks on without blocking and must not raise. Nothing reaches `sink` after a
        failure is known; the result then holds the error document, and its payload is
        meaningless otherwise. `started(version)` is called once the version that runs is
        chosen (an alias may route by weight), before any chunk: the edges name it in headers
        sent ahead of the body. Not placed in a cluster (decision 084): a streamed call runs
        where it arrives, and a reserved function's limit holds per node for it."""
        body = check_payload(payload)
        version = self.resolve_for_invoke(name, qualifier)
        if started is not None:
            started(version.version)
        block, out = self._run(version, body, qualifier, request_id, chunk_sink=sink)
        if block.error is None and out:
            sink(out)
        return _result(block, out, block.write().encode())

    def invoke_log_later(
        self,
        name: str,
        payload: bytes | str | None = None,
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        client_context: dict | None = None,
    ) -> tuple[InvocationResult, PendingLog]:
        """Invoke as `invoke()` does, but leave the log block to the caller: it runs the
        returned PendingLog's `write()` once, when it chooses (the gRPC edge: after the
        response is sent, docs/decisions/037). The result's `log` is empty; reads of the
        function's log wait for the block meanwhile (LogStore.reserve). Runs here: its caller
        (the gRPC edge) placed the call already."""
        body = check_payload(payload)
        version = self.resolve_for_invoke(name, qualifier)
        block, out = self._run(version, body, qualifier, request_id, trace_id, client_context)
        result = _result(block, out, b"")
        # Promised last: nothing between the promise and the hand-over can fail and leave it
        # unkept (reads would wait PENDING_WAIT_S for it).
        return result, block.promise()

    def _run(self, version: FunctionVersion, body: bytes, qualifier: str | None,
             request_id: str | None, trace_id: str | None = None,
             client_context: dict | None = None,
             chunk_sink: Callable[[bytes], None] | None = None,
             ) -> tuple[LogBlock, bytes | None]:
        """Run one invocation of `version` here: its record (the log block, which holds the
        error and the report) and the response payload (None when it failed). The caller
        checked the payload (`body`) and resolved the version, in that order."""
        name = version.name
        # Counted from here, once the name is known to be a function (bounded labels): exactly
        # one of finished() / refused() follows started().
        metrics = self.metrics
        metrics.started(name)
        try:
            block, out = self._execute(version, body, qualifier, request_id, trace_id or "",
                                       client_context, chunk_sink)
        except TooManyRequests:
            metrics.refused(name, throttled=True)
            raise
        except BaseException:
            metrics.refused(name, throttled=False)
            raise
        metrics.finished(name, version.version, block.report, block.error,
                         version.config.memory_mb)
        if self.spans is not None:
            self.spans.invocation(version, block.request_id, trace_id, block.report, block.error,
                                  time.time_ns())
        return block, out

    def _execute(self, version: FunctionVersion, body: bytes, qualifier: str | None,
                 request_id: str | None, trace_id: str,
                 client_context: dict | None = None,
                 chunk_sink: Callable[[bytes], None] | None = None,
                 ) -> tuple[LogBlock, bytes | None]:
        rid = request_id or new_request_id()
        cfg = version.config
        ctx = self.contexts.get(version, qualifier, time.time())
        if client_context is not None:
            # A context of its own (contexts are read-only and compared by identity, so the
            # environment sends this one, and the cached one again after it).
            ctx = {**ctx, "client_context": client_context}
        while True:
            lease = self.pool.acquire(version)
            if isinstance(lease, InitFailure):  # Lambda reports a failed init on the invocation
                report = Report(rid, 0.0, 0, cfg.memory_mb, 0, lease.duration_ms, cold_start=True,
                                xray=report_suffix(trace_id) if trace_id else "")
                return self._block(version, rid, lease.error, lease.logs, b"", report,
                                   trace_id), None
            env = lease.env
            # The deadline counts from the moment the handler may start, as on Lambda: init
            # time of a cold start is not charged to the invocation's timeout.
            deadline = time.monotonic() + cfg.timeout_s
            try:
                # The guest's getRemainingTimeInMillis counts from here too.
                outcome = env.invoke(InvokeRequest(rid, body, cfg.timeout_s, deadline, ctx,
                                                   int((time.time() + cfg.timeout_s) * 1000),
                                                   trace_id, chunk_sink))
            except EnvironmentGone:
                self.pool.release(lease, reusable=False)
                if lease.cold:
                    raise  # a fresh environment died before its first invocation: report it
                # Killed while idle (nothing of the invocation reached it): the next idle
                # environment or a cold start takes it. Ends: each pass removes one idle
                # environment, and a cold lease does not loop.
                continue
            except BaseException:
                self.pool.release(lease, reusable=False)
                raise
            break
        self.pool.release(lease, outcome.reusable)
        error = outcome.error
        out = outcome.payload
        # The one place that decides a response is too large (Lambda's 6 MB). Environments
        # may refuse one earlier for their own reasons (a frame limit, copying guest memory).
        if out is not None and len(out) > MAX_PAYLOAD_BYTES:
            error = ResponseSizeTooLarge.of(len(out), MAX_PAYLOAD_BYTES)
            out = None
        report = Report(
            request_id=rid,
            duration_ms=outcome.duration_ms,
            billed_duration_ms=max(1, math.ceil(outcome.duration_ms)),
            memory_size_mb=cfg.memory_mb,
            max_memory_used_mb=math.ceil(outcome.max_memory_bytes / MB),
            init_duration_ms=env.init_duration_ms if lease.cold else None,
            cold_start=lease.cold,
            xray=report_suffix(trace_id) if trace_id else "",
        )
        init_logs = env.init_logs if lease.cold else b""
        return self._block(version, rid, error, init_logs, outcome.logs, report, trace_id), out

    def _block(self, version: FunctionVersion, rid: str, error, init_logs: bytes, logs: bytes,
               report: Report, trace_id: str = "") -> LogBlock:
        cfg = version.config
        json_level = (cfg.system_log_level or "INFO") if cfg.log_format == "JSON" else ""
        return LogBlock(self.logs, version.name, version.version, rid, error, init_logs, logs,
                        report, version.function_uid, json_level, trace_id)

    def check_invoke(self, name: str, payload: bytes | str | None = None, *,
                     qualifier: str | None = None) -> FunctionVersion:
        """A dry run: the checks an invocation makes before running anything."""
        check_payload(payload)
        return self.resolve_for_invoke(name, qualifier)


def _result(block: LogBlock, out: bytes | None, log_text: bytes) -> InvocationResult:
    """What the caller gets: the payload, or Lambda's error document when the function failed."""
    error = block.error
    if error is not None:
        doc = error.to_document()
        return InvocationResult(block.request_id, json.dumps(doc).encode(), "Unhandled", doc,
                                log_text, block.report, block.version)
    return InvocationResult(block.request_id, out or b"null", None, None, log_text,
                            block.report, block.version)
