"""Task states: which function a Resource names, the invocation, and what its failure is called.

Resources (asl.py refuses anything else):

* `NAME`, `NAME:QUALIFIER` or `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`: the
  result is the function's own response; history events `LambdaFunction*`.
* `arn:aws:states:::lambda:invoke` with `Parameters.FunctionName` (name or ARN) and
  `Parameters.Payload`: the result is Lambda's Invoke response (`Payload`, `StatusCode`,
  `ExecutedVersion`, ...); history events `Task*`.

A function error surfaces as its `errorType` with Lambda's error document as the cause, so
`Retry`/`Catch` can name it; a platform error as `Lambda.<Exception>` (e.g.
`Lambda.ResourceNotFoundException`), as Step Functions names them.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

from runner.errors import PlatformError, WorkflowFailure

INVOKE_ARN = "arn:aws:states:::lambda:invoke"

# invoke(name, payload, qualifier=None) -> an object with .payload (bytes), .function_error,
# .executed_version and .request_id: Runner.invoke, or a stand-in in tests.
Invoke = Callable[..., Any]


def function_of(resource: str) -> tuple[str, str | None]:
    """(name, qualifier) for a function name, `name:qualifier` or a Lambda function ARN."""
    text = resource.split(":function:", 1)[1] if ":function:" in resource else resource
    name, _, qualifier = text.partition(":")
    return name, qualifier or None


def call(invoke: Invoke, name: str, qualifier: str | None, payload: Any,
         timeout_s: float | None, stop: threading.Event | None = None):
    """Invoke and return (result object, parsed payload); WorkflowFailure on any failure.
    With `timeout_s`, States.Timeout once it passes (the invocation itself runs on to its
    own timeout: a running function cannot be recalled, as in Step Functions)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    if timeout_s is None:
        result = _invoke(invoke, name, qualifier, body)
    else:
        box: dict = {}

        def run():
            try:
                box["r"] = _invoke(invoke, name, qualifier, body)
            except BaseException as exc:  # handed to the waiting thread
                box["e"] = exc
        t = threading.Thread(target=run, name=f"task-{name}", daemon=True)
        t.start()
        t.join(timeout_s)
        if t.is_alive():
            raise WorkflowFailure("States.Timeout", f"Task of function {name!r} did not finish "
                                  f"within TimeoutSeconds={timeout_s:g}")
        if "e" in box:
            raise box["e"]
        result = box["r"]
    if result.function_error:
        text = result.payload.decode(errors="replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {}
        etype = doc.get("errorType") if isinstance(doc, dict) else None
        raise WorkflowFailure(etype or "Lambda.Unknown", text)
    try:
        value = json.loads(result.payload) if result.payload else None
    except ValueError:
        raise WorkflowFailure("States.Runtime", f"function {name!r} returned a response that "
                              "is not JSON") from None
    return result, value


def _invoke(invoke: Invoke, name: str, qualifier: str | None, body: bytes):
    try:
        return invoke(name, body, qualifier=qualifier)
    except PlatformError as exc:
        raise WorkflowFailure(f"Lambda.{exc.error_type}", exc.message) from None


def invoke_response(result, value: Any) -> dict:
    """What `arn:aws:states:::lambda:invoke` returns: Lambda's Invoke response."""
    return {
        "ExecutedVersion": result.executed_version,
        "Payload": value,
        "SdkHttpMetadata": {"HttpHeaders": {"X-Amz-Executed-Version": result.executed_version,
                                            "x-amzn-RequestId": result.request_id},
                            "HttpStatusCode": 200},
        "SdkResponseMetadata": {"RequestId": result.request_id},
        "StatusCode": 200,
    }
