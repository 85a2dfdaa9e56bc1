"""The gRPC edge's part of a cluster (docs/cluster.md): forwarding a synchronous invocation
to its function's home node, and the token check on every call.

Forwarding: the node that accepted the call asks the Router (runner/cluster/router.py) where
it runs; if another node, it sends the same InvokeRequest there over a channel kept per peer,
marked with FORWARDED_KEY so that the receiver runs it without routing it again (one hop at
most: two nodes with different views can never bounce a call between them). A peer that
cannot be reached (it died since the last heartbeat) is not retried elsewhere over the network:
the call runs here, so a dead peer costs one failed connect, not an error. A function with
reserved concurrency is the exception (decision 079): its calls run at one node at a time, so
an unreachable home is skipped for the next node in the function's order -- the same node for
every accepting node that cannot reach the home -- and never for "here" unless that is it.

A peer's refusal (throttled, not found, ...) reaches the client as the peer sent it: status
code, details and error type (status.PeerStatus), never INTERNAL.

Every other entry point (decision 084): `invoke_remote` is the Runner's `remote_invoke` hook
(invocation/invoke_path.py), called for a function with reserved concurrency by whatever
invokes it here -- the HTTP edge, the async dispatcher, a mapping's poller, a workflow's Task.
It routes the call as above (home only, the next in order when the home cannot be reached)
and sends it over the same peer Invoke, marked forwarded, with the request id (an async
event's, so the home's log block names it) and the trace; the peer's response comes back as
an InvocationResult (convert.invocation_result) and a refusal as the PlatformError it stood
for (status.peer_error: TooManyRequests stays TooManyRequests). Only the execution moves: the
caller keeps its own semantics (an async event's retries, dead letters and destinations stay
with the node that claimed it).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Callable

import grpc

from runner.cluster import auth
from runner.cluster.router import Router
from runner.invocation_record import InvocationResult
from runner.service.grpc.convert import invocation_result
from runner.service.grpc.status import PeerStatus, peer_error
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

FORWARDED_KEY = "x-runner-forwarded-by"
REQUEST_ID_KEY = "x-runner-request-id"  # the id a placed call runs under (an async event's)
TRACE_KEY = "x-amzn-trace-id"  # read by the servicer as a client's trace header
# What a placed call may take beyond its function's timeout before the caller gives up on the
# home: a cold start's init (not charged to the timeout) and the hop.
PLACED_MARGIN_S = 60.0
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024)]


def _unreserved(name: str, qualifier: str | None) -> bool:
    return False


class Forwarder:
    """`reserved(name, qualifier)`: whether the function's calls must stay at its home (its
    configuration's concurrency_reserved; a cached registry read, no round trip)."""

    def __init__(self, router: Router, node_id: str, token: str = "",
                 reserved: Callable[[str, str | None], bool] = _unreserved) -> None:
        self.router, self.node_id, self.token = router, node_id, token
        self.reserved = reserved
        self._stubs: dict[str, pb_grpc.InvokerStub] = {}
        self._channels: list[grpc.Channel] = []
        self._lock = threading.Lock()
        self.forwarded = 0  # calls sent to a peer (for tests and metrics)
        self._closed = False

    def _stub(self, address: str) -> pb_grpc.InvokerStub:
        with self._lock:
            stub = self._stubs.get(address)
            if stub is None:
                channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                self._channels.append(channel)
                stub = self._stubs[address] = pb_grpc.InvokerStub(channel)
            return stub

    def place(self, request, context) -> tuple[object | None, str | None]:
        """(the peer's response, None) when the call was forwarded; (None, request_id) to run
        it here, request_id being the one a forwarding node chose for it, if any."""
        metadata = dict(context.invocation_metadata() or ())
        if FORWARDED_KEY in metadata:
            return None, metadata.get(REQUEST_ID_KEY)
        reserved = self.reserved(request.name, request.qualifier or None)
        remaining = context.time_remaining()
        timeout = remaining if remaining is not None and remaining < 1e6 else None
        return self._route(request, reserved, (), timeout), None

    def invoke_remote(self, version, body: bytes, qualifier: str | None,
                      request_id: str | None, trace_id: str | None,
                      client_context: dict | None) -> InvocationResult | None:
        """Runner.remote_invoke: a reserved function's call run at its home node, or None to
        run it here (this node is the home, or the next in order after an unreachable one)."""
        if self._closed:  # shutting down: what is still invoked runs here
            return None
        request = pb.InvokeRequest(name=version.name, qualifier=qualifier or "", payload=body,
                                   log_type=pb.LOG_TYPE_TAIL)
        if client_context is not None:
            raw = json.dumps(client_context, separators=(",", ":")).encode()
            request.client_context = base64.b64encode(raw).decode()
        extra = []
        if request_id:
            extra.append((REQUEST_ID_KEY, request_id))
        if trace_id:
            extra.append((TRACE_KEY, trace_id))
        try:
            response = self._route(request, True, extra,
                                   version.config.timeout_s + PLACED_MARGIN_S)
        except PeerStatus as refused:
            raise peer_error(refused) from None
        return None if response is None else invocation_result(response)

    def _route(self, request, reserved: bool, extra, timeout: float | None):
        """The response of the peer the call belongs to, or None to run it here."""
        skip: frozenset[str] = frozenset()
        while True:
            peer = self.router.choose(request.name, reserved, skip)
            if peer is None:
                return None
            response = self._send(peer, request, extra, timeout)
            if response is not None:
                self.forwarded += 1
                return response
            if not reserved:
                return None  # unreachable: run here
            skip |= {peer.id}  # a reserved function's next home in order, never two at once

    def _send(self, peer, request, extra, timeout: float | None):
        """The peer's response; None when it cannot be reached; PeerStatus when it refused."""
        outgoing = [(FORWARDED_KEY, self.node_id), *extra]
        if self.token:
            outgoing.append(auth.bearer(self.token))
        with self.router.sending(peer):
            try:
                return self._stub(peer.address).Invoke(request, metadata=outgoing,
                                                       timeout=timeout)
            except ValueError:
                if self._closed:  # the channel closed under a call placed as we stop
                    return None
                raise
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    log.warning("peer %s (%s) unreachable for %s", peer.id, peer.address,
                                request.name)
                    return None
                # The peer's platform error (throttled, not found, ...) is the caller's answer,
                # raised to the servicer's edge, whose abort() passes it on unchanged (an
                # abort here would be caught there and turned into INTERNAL).
                raise PeerStatus(exc.code(), exc.details() or "",
                                 exc.trailing_metadata() or ()) from None

    def forward_logs(self, request, context):
        """The home node's GetLogs stream for the function (a node's logs are on its own disk,
        and with home routing a function runs at home), or None to read them here."""
        if FORWARDED_KEY in dict(context.invocation_metadata() or ()):
            return None
        peer = self.router.home(request.name)
        if peer is None:
            return None
        outgoing = [(FORWARDED_KEY, self.node_id)]
        if self.token:
            outgoing.append(auth.bearer(self.token))
        stream = self._stub(peer.address).GetLogs(request, metadata=outgoing)
        context.add_callback(stream.cancel)  # the client left: stop the peer's stream too
        return _relay(stream, context)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for channel in self._channels:
                channel.close()
            self._channels.clear()
            self._stubs.clear()


def _relay(stream, context):
    """A peer's stream, its status passed on as the peer set it (not turned into INTERNAL)."""
    try:
        yield from stream
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.CANCELLED and not context.is_active():
            return
        context.set_trailing_metadata(exc.trailing_metadata() or ())
        context.set_code(exc.code())
        context.set_details(exc.details() or "")


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses every call without the cluster token (UNAUTHENTICATED), health checks aside."""

    def __init__(self, token: str, meter=None) -> None:
        self.token = token
        # meter(handler, method) -> handler counting its calls (observe.metered): a refused
        # call is counted as the method it named, as every other call is.
        self._meter = meter
        self._denials: dict[str, grpc.RpcMethodHandler] = {}

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "authorization: missing or wrong token; set RUNNER_TOKEN to the "
                          "cluster's token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(auth.EXEMPT_PREFIXES):
            return continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get(auth.HEADER)
        if auth.valid(presented, self.token):
            return continuation(handler_call_details)
        if self._meter is None:
            return self._deny
        method = handler_call_details.method
        handler = self._denials.get(method)
        if handler is None:
            if continuation(handler_call_details) is None:
                return self._deny  # no such method: not counted, as no unknown method is
            handler = self._denials[method] = self._meter(self._deny, method.rsplit("/", 1)[-1])
        return handler


class _TokenClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self.header = auth.bearer(token)

    def _add(self, details):
        metadata = list(details.metadata or ()) + [self.header]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else \
            _Details(details.method, details.timeout, metadata, details.credentials,
                     details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._add(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._add(details), request)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression


def with_token(channel: grpc.Channel, token: str) -> grpc.Channel:
    """`channel` sending the cluster token with every call (the CLI with RUNNER_TOKEN)."""
    return grpc.intercept_channel(channel, _TokenClientInterceptor(token))
