"""Every error the runner raises, in one place.

The hierarchy::

    RunnerError
    ├── PlatformError                  the caller's or the platform's fault; never reaches a guest.
    │   │                              The service edge maps each to a gRPC status code in ONE
    │   │                              table (runner/service/grpc/status.py); `error_type` is the
    │   │                              Lambda-style name sent along in trailing metadata.
    │   ├── InvalidParameter            bad configuration or request field   INVALID_ARGUMENT
    │   │   ├── ValidationError          a name breaks its pattern            INVALID_ARGUMENT
    │   │   ├── InvalidCodePackage       zip-slip, zip bomb, bad wasm, ...    INVALID_ARGUMENT
    │   │   └── InvalidRequestContent    invoke payload is not JSON           INVALID_ARGUMENT
    │   ├── RequestTooLarge             payload over 6 MB (in or out)        INVALID_ARGUMENT
    │   ├── ResourceNotFound            unknown function / version / alias   NOT_FOUND
    │   │   └── StateMachineDoesNotExist, ExecutionDoesNotExist   (workflows; Step Functions'
    │   │                                names, as are InvalidDefinition, InvalidArn, InvalidName,
    │   │                                InvalidExecutionInput, StateMachineTypeNotSupported and
    │   │                                UnknownStepFunctionsOperation under InvalidParameter, and
    │   │                                StateMachineAlreadyExists, ExecutionAlreadyExists under
    │   │                                ResourceConflict)
    │   │   └── UnknownOperation         a Lambda API path with no operation  NOT_FOUND
    │   ├── ResourceConflict            state forbids the change (e.g. an    FAILED_PRECONDITION
    │   │                                update of the function in progress)
    │   ├── PreconditionFailed          a revision_id that is not the        FAILED_PRECONDITION
    │   │                                function's current one (stale)
    │   ├── TooManyRequests             concurrency limit reached            RESOURCE_EXHAUSTED
    │   ├── StorageFull                 the data directory (or any store in  RESOURCE_EXHAUSTED
    │   │                                it) is out of space: ENOSPC, EDQUOT,  (HTTP 507)
    │   │                                SQLite's SQLITE_FULL; never INTERNAL
    │   │                                (named by storage_full() at the edges)
    │   ├── ServiceUnavailable          shutting down                        UNAVAILABLE
    │   └── InternalError               a bug or a host failure              INTERNAL
    │       ├── EnvironmentGone          an idle environment died before it   INTERNAL
    │       │                            got the invocation; the Runner
    │       │                            retries it on another environment
    │       ├── BlobNotFound             the code store (PostgreSQL or S3)    INTERNAL
    │       │                            lacks a package the registry names
    │       └── CorruptBlob              a blob fetched from the code store   INTERNAL
    │                                    does not hash to its sha256 key
    ├── WorkflowFailure                an execution's failure: an ASL error name (States.Timeout,
    │                                  a function's errorType, a Fail state's Error) and a cause;
    │                                  travels in the execution's result, never as an API error
    └── FunctionError                  the guest's fault. Travels INSIDE a successful response,
        │                              as Lambda does: payload = {errorMessage, errorType,
        │                              stackTrace}; the response's function_error is "Unhandled".
        ├── FunctionInitError           init phase failed (import error, handler not found, ...)
        │   ├── RuntimeExited            the runtime exited before it was ready (ExitError)
        │   └── InitInvalidResponse      the runtime broke the protocol during init
        ├── HandlerError                the handler raised / rejected
        │   └── WasmTrap                 a wasm guest trapped (unreachable, bounds, ...): its
        │                                own failure, the environment stays in service
        ├── FunctionTimeout             ran past its timeout: "Task timed out after N.NN seconds"
        ├── FunctionOutOfMemory         exceeded its memory limit; environment replaced
        ├── ResponseSizeTooLarge        the handler's result is over 6 MB
        └── FunctionCrashed             the environment died (signal, exit) mid-invocation
            ├── InvalidResponse          the runtime broke the protocol (a bad frame)
            └── WasmError                wasmtime refused a guest call for another reason

    InternalCondition                  not a RunnerError: raised and caught inside one layer to
    │                                  steer it; one that escapes is a bug (the edges' INTERNAL)
    ├── ProtocolError                   a guest broke the framing or closed its channel
    ├── ZygoteDead                      a Python zygote exited or stopped answering
    ├── CgroupUnavailable               this host has no usable cgroup; the message says why
    ├── SnapshotUnsupported             a wasm module cannot be snapshotted
    ├── SourceUnavailable               an event source's broker is unreachable (sources/)
    └── MalformedResponse (ValueError)  a route's result is no HTTP response (API Gateway: 500)

A platform error a peer node answered a forwarded call with (a cluster, decision 079) is not
raised again as a class here: the gRPC edge relays the peer's status as it came
(runner/service/grpc/status.py, PeerStatus), since the peer already mapped it. A call another
entry point placed at the home (decision 084) has no gRPC caller to relay it to: its refusal
is raised as the class the peer's status stood for (status.peer_error).

A function error's Lambda `errorType` is its class's `error_type`; a guest's own document
(`FunctionError.from_document`) may carry any type, since the guest names its exceptions.

Messages name the field and say how to fix it, e.g.
``memory_mb: 64 is outside 128..10240; pick a value in that range``.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Any


class RunnerError(Exception):
    """Base of everything the runner raises on purpose."""

    error_type = "ServiceException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------- platform errors


class PlatformError(RunnerError):
    """The request cannot be served; no guest code ran (or its result cannot be delivered)."""


class InvalidParameter(PlatformError):
    error_type = "InvalidParameterValueException"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ValidationError(InvalidParameter):
    """A name (function, alias, ...) that can never exist: Lambda answers ValidationException
    before looking anything up, so an invalid name is never "not found"."""

    error_type = "ValidationException"


class InvalidCodePackage(InvalidParameter):
    error_type = "InvalidCodePackageException"


class InvalidRequestContent(InvalidParameter):
    error_type = "InvalidRequestContentException"


class RequestTooLarge(PlatformError):
    error_type = "RequestTooLargeException"


class ResourceNotFound(PlatformError):
    error_type = "ResourceNotFoundException"


class ResourceConflict(PlatformError):
    error_type = "ResourceConflictException"


class PreconditionFailed(PlatformError):
    """Lambda's optimistic concurrency: an update or publish named a RevisionId that is no
    longer the function's (someone changed it since the caller read it)."""

    error_type = "PreconditionFailedException"


# Lambda management API (issue 20) ------------------------------------------------------------


class UnknownOperation(ResourceNotFound):
    """A path of the Lambda API (`/2015-03-31/...`) that names no operation this server
    serves: answered as AWS answers one (404 UnknownOperationException), never routed on."""

    error_type = "UnknownOperationException"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"{method} {path} is not an operation this server serves; "
                         "docs/lambda-compatibility.md lists the supported ones")


class TooManyRequests(PlatformError):
    error_type = "TooManyRequestsException"


class ServiceUnavailable(PlatformError):
    error_type = "ServiceException"


class InternalError(PlatformError):
    error_type = "ServiceException"


class EnvironmentGone(InternalError):
    """An environment handed out as warm was found dead when the invocation was sent to it
    (killed while idle: the OOM killer, its zygote's death, an operator): nothing of the
    invocation reached the guest, so it can run elsewhere. The Runner retries it on another
    environment; it reaches a caller only if a freshly started one dies the same way."""


class BlobNotFound(InternalError):
    """The code store (storage/blobs.py) has no blob under a sha256 the registry or the layer
    store names: the store was emptied or pointed elsewhere. The caller's request is valid;
    the operator restores the blob (or redeploys), so not a ResourceNotFound."""


class CorruptBlob(InternalError):
    """A blob read from the code store does not hash to the sha256 it is stored under (a
    damaged object, a store another tool wrote into). Never extracted or run."""


# --- issue 17, item 6: a full disk is reported as such, never as an internal error


class StorageFull(PlatformError):
    """The host's data directory has no space left: code, registry, logs or the event queue
    could not be written. Nothing is half-recorded (each store writes whole or not at all).
    Not an InternalError: the cause is the host's disk, named, and retrying after space is
    freed succeeds; the edges send RESOURCE_EXHAUSTED / HTTP 507."""

    error_type = "StorageFullException"


def storage_full(exc: BaseException) -> StorageFull | None:
    """`exc` as a StorageFull when it is the data directory running out of space (OSError
    ENOSPC or EDQUOT, or SQLite's "database or disk is full"); None for anything else. The
    edges call it on unexpected exceptions, so the operator reads the cause and the fix
    instead of "internal error: OSError". The cause and context chain is searched too, so a
    store that wraps its OSError (`raise X from exc`) is still named."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, StorageFull):
            return cause
        if isinstance(cause, PlatformError) and not isinstance(cause, InternalError):
            return None  # a named refusal (bad request, not found, ...) stays what it is
        if _is_full(cause):
            break
        seen.add(id(cause))
        # `raise X from None` hides the context on purpose: that chain ends there.
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    else:
        return None
    return StorageFull("the runner's data directory is out of space (No space left on device); "
                       "free space there or start the server with another --data-dir")


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                or "disk is full" in str(exc))
    return False

# --------------------------------------------------------------------------- workflows (issue 21)
# The Step Functions API's own error types, as subclasses of the platform errors whose status
# they share, so the edges' tables need no new rows. `WorkflowFailure` is an execution's
# failure (an ASL error name and cause): like a function error it travels in the result
# (DescribeExecution's error/cause), never as an API error.


class InvalidDefinition(InvalidParameter):
    error_type = "InvalidDefinition"


class InvalidArn(InvalidParameter):
    error_type = "InvalidArn"


class InvalidName(InvalidParameter):
    error_type = "InvalidName"


class InvalidExecutionInput(InvalidParameter):
    error_type = "InvalidExecutionInput"


class StateMachineTypeNotSupported(InvalidParameter):
    error_type = "StateMachineTypeNotSupported"


class UnknownStepFunctionsOperation(InvalidParameter):
    error_type = "UnknownOperationException"


class InvalidToken(InvalidParameter):
    error_type = "InvalidToken"


class StateMachineDoesNotExist(ResourceNotFound):
    error_type = "StateMachineDoesNotExist"


class ExecutionDoesNotExist(ResourceNotFound):
    error_type = "ExecutionDoesNotExist"


class StateMachineAlreadyExists(ResourceConflict):
    error_type = "StateMachineAlreadyExists"


class ExecutionAlreadyExists(ResourceConflict):
    error_type = "ExecutionAlreadyExists"


class WorkflowFailure(RunnerError):
    """A state failed with an ASL error name (`States.Timeout`, a function's errorType, a Fail
    state's Error) and a cause; Retry and Catch match on `error`."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


# --------------------------------------------------------------------------- function errors


class FunctionError(RunnerError):
    """The guest failed. Carries Lambda's error document; never becomes a gRPC error status."""

    error_type = "Runtime.Unknown"

    def __init__(
        self,
        message: str,
        error_type: str | None = None,
        stack_trace: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        if error_type:
            self.error_type = error_type
        self.stack_trace = list(stack_trace or [])

    def to_document(self) -> dict[str, Any]:
        """Lambda's error payload shape: errorMessage, errorType, stackTrace."""
        return {
            "errorMessage": self.message,
            "errorType": self.error_type,
            "stackTrace": self.stack_trace,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "FunctionError":
        trace = doc.get("stackTrace") or []
        if isinstance(trace, str):
            trace = trace.splitlines()
        return cls(
            str(doc.get("errorMessage", "")),
            str(doc.get("errorType") or cls.error_type),
            [str(x) for x in trace],
        )


class FunctionInitError(FunctionError):
    error_type = "Runtime.InitError"


class HandlerError(FunctionError):
    error_type = "Runtime.HandlerError"


class FunctionTimeout(FunctionError):
    error_type = "Sandbox.Timedout"

    @classmethod
    def after(cls, timeout_s: float) -> "FunctionTimeout":
        return cls(f"Task timed out after {timeout_s:.2f} seconds")


class FunctionOutOfMemory(FunctionError):
    error_type = "Runtime.OutOfMemory"

    @classmethod
    def at(cls, memory_mb: int, detail: str = "") -> "FunctionOutOfMemory":
        msg = f"Runtime exited: out of memory (limit {memory_mb} MB)"
        return cls(msg + (f": {detail}" if detail else ""))


class FunctionCrashed(FunctionError):
    error_type = "Runtime.ExitError"


class RuntimeExited(FunctionInitError):
    """The runtime process exited (or its sandbox failed) before it was ready."""

    error_type = "Runtime.ExitError"


class InitInvalidResponse(FunctionInitError):
    """The runtime sent something the protocol does not allow during init."""

    error_type = "Runtime.InvalidResponse"


class ResponseSizeTooLarge(FunctionError):
    error_type = "Function.ResponseSizeTooLarge"

    @classmethod
    def of(cls, size: int, limit: int) -> "ResponseSizeTooLarge":
        return cls(f"Response payload size ({size} bytes) exceeded maximum allowed payload "
                   f"size ({limit} bytes).")


class InvalidResponse(FunctionCrashed):
    """The runtime sent a frame the host cannot decode, or one the protocol does not allow."""

    error_type = "Runtime.InvalidResponse"


class WasmTrap(HandlerError):
    error_type = "Runtime.WasmTrap"


class WasmError(FunctionCrashed):
    error_type = "Runtime.WasmError"


# --------------------------------------------------------------------------- internal conditions


class InternalCondition(Exception):
    """Raised and caught inside one layer to steer it; never crosses an edge on purpose."""


class ProtocolError(InternalCondition):
    """The peer broke the framing or closed the channel."""


class ZygoteDead(InternalCondition):
    """The zygote exited or stopped answering; the next cold start builds a new one."""


class CgroupUnavailable(InternalCondition):
    """This host gives us no usable cgroup for environments; the message says why and the fix."""


class SnapshotUnsupported(InternalCondition):
    """This module cannot be snapshotted; its environments run init themselves."""


# Event source mappings (issue 18, runner/sources/).


class SourceUnavailable(InternalCondition):
    """A mapping's broker cannot be reached or refused an operation; the poller records why
    in the mapping's state, closes the connection and reconnects with backoff."""


class MalformedResponse(InternalCondition, ValueError):
    """The function's result cannot be turned into an HTTP response (API Gateway: 500)."""
