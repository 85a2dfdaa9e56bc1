"""The one table mapping platform errors to gRPC status codes (see runner/errors.py).

Function errors never appear here: they travel inside a successful InvokeResponse. The
Lambda-style error type goes along in the trailing metadata key `x-error-type`, so clients can
tell, e.g., RequestTooLargeException from InvalidRequestContentException under one status.

A call forwarded to a peer (cluster.py) that the peer refused ends here as a PeerStatus: the
peer already applied this table, so its status, details and error type pass on unchanged.
A refusal of a call another layer placed at the home (Runner.remote_invoke, decision 084)
has no gRPC caller to relay it to: `peer_error` turns it back into the PlatformError the peer
raised, so the HTTP edge answers 429 TooManyRequestsException and the async dispatcher defers
a throttled event, as for a refusal by this node's own pool.
"""

from __future__ import annotations

import logging

import grpc

from runner import errors

log = logging.getLogger(__name__)

ERROR_TYPE_KEY = "x-error-type"

# Most specific first: the first matching class wins.
STATUS_TABLE: tuple[tuple[type[errors.PlatformError], grpc.StatusCode], ...] = (
    (errors.InvalidParameter, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.RequestTooLarge, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ResourceNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.ResourceConflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.TooManyRequests, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StorageFull, grpc.StatusCode.RESOURCE_EXHAUSTED),  # issue 17: never INTERNAL
    (errors.ServiceUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.InternalError, grpc.StatusCode.INTERNAL),
)


class PeerStatus(Exception):
    """A status another node answered a forwarded call with: the code, the details and the
    trailing metadata (its x-error-type) to answer the client with, as they came. Raised by
    the forwarder, ended by abort() below; not a PlatformError, since the peer, not this
    node, decided it and a gRPC code is this edge's concern."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing=()) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code, self.details, self.trailing = code, details, tuple(trailing)


def peer_error(peer: PeerStatus) -> errors.PlatformError:
    """The platform error `peer` stands for: the class this table maps to the peer's code
    whose error_type is the peer's x-error-type (TooManyRequests, not StorageFull, under
    RESOURCE_EXHAUSTED), else the code's first class (or InternalError for a code the table
    has none for, e.g. DEADLINE_EXCEEDED), carrying the peer's error type and message."""
    error_type = dict(peer.trailing).get(ERROR_TYPE_KEY, "")
    classes = [cls for cls, code in STATUS_TABLE if code == peer.code] or [errors.InternalError]
    chosen = next((c for c in _with_subclasses(classes) if c.error_type == error_type),
                  classes[0])
    # Built without the class's own __init__ (InvalidParameter wants a field, the peer sent
    # the formatted message): the message is the peer's, as it came.
    exc = chosen.__new__(chosen)
    errors.RunnerError.__init__(exc, peer.details)
    if error_type:
        exc.error_type = error_type
    return exc


def _with_subclasses(classes):
    for cls in classes:
        yield cls
        yield from _with_subclasses(cls.__subclasses__())


def status_for(exc: errors.PlatformError) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    """End the RPC with the status for `exc`. Unknown exceptions are logged and become INTERNAL
    without leaking internals to the client; a full data directory is named (storage_full)."""
    if isinstance(exc, PeerStatus):
        context.set_trailing_metadata(exc.trailing)
        context.abort(exc.code, exc.details)
    exc = errors.storage_full(exc) or exc
    if isinstance(exc, errors.PlatformError):
        context.set_trailing_metadata(((ERROR_TYPE_KEY, exc.error_type),))
        context.abort(status_for(exc), exc.message)
    log.exception("unexpected error serving %s", type(exc).__name__)
    context.set_trailing_metadata(((ERROR_TYPE_KEY, errors.InternalError.error_type),))
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
