"""The one table mapping platform errors to HTTP status codes (see runner/errors.py), and the
error bodies both HTTP faces send.

The Lambda Invoke API answers errors the way the real service does, so SDKs raise the right
exception: the status code, the header `x-amzn-ErrorType: <Lambda exception name>` and a JSON
body `{"Type": "User" | "Service", "message": ...}`. Function routes answer as API Gateway
does: a status code and `{"message": ...}`.
"""

from __future__ import annotations

import json
import logging

from runner import errors

log = logging.getLogger(__name__)

ERROR_TYPE_HEADER = "x-amzn-ErrorType"

# Most specific first: the first matching class wins.
STATUS_TABLE: tuple[tuple[type[errors.PlatformError], int], ...] = (
    (errors.InvalidParameter, 400),  # covers InvalidCodePackage and InvalidRequestContent
    (errors.RequestTooLarge, 413),
    (errors.ResourceNotFound, 404),
    (errors.ResourceConflict, 409),
    (errors.PreconditionFailed, 412),
    (errors.TooManyRequests, 429),
    (errors.StorageFull, 507),  # Insufficient Storage (issue 17: never 500)
    (errors.ServiceUnavailable, 503),
    (errors.InternalError, 500),
)


def status_for(exc: BaseException) -> int:
    if isinstance(exc, errors.PlatformError):
        for cls, code in STATUS_TABLE:
            if isinstance(exc, cls):
                return code
    return 500


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(status, Lambda error type, message) for any exception. Unknown exceptions are logged
    and reported without internals; a full data directory is named (storage_full)."""
    exc = errors.storage_full(exc) or exc
    if isinstance(exc, errors.PlatformError):
        return status_for(exc), exc.error_type, exc.message
    log.error("unexpected error serving HTTP", exc_info=exc)
    return 500, errors.InternalError.error_type, f"internal error: {type(exc).__name__}"


def lambda_error_body(status: int, message: str) -> bytes:
    """The Invoke API's error document; Type says whose fault it is, as Lambda's does."""
    return json.dumps({"Type": "User" if status < 500 else "Service",
                       "message": message}).encode()


def gateway_body(message: str) -> bytes:
    """API Gateway's error document for function routes."""
    return json.dumps({"message": message}).encode()
