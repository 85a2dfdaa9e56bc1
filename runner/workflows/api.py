"""The Step Functions API's operations over a WorkflowEngine: JSON request in, JSON out.

`call(engine, "StartExecution", {"stateMachineArn": ..., "input": ...})` returns the response
document as Step Functions shapes it (botocore's service model: member names, epoch-second
dates, one `<type>EventDetails` member per history event). Errors are raised as the platform
errors of runner/errors.py whose `error_type` is Step Functions' exception name
(StateMachineDoesNotExist, InvalidDefinition, ...); the HTTP edge turns them into JSON 1.0
error responses. Fields this runner has no use for (tags, logging and tracing configuration)
are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Callable

from runner.errors import InvalidDefinition, InvalidParameter, UnknownStepFunctionsOperation
from runner.invocation import trace
from runner.storage.workflows import Execution, HistoryEvent, StateMachine
from runner.workflows.engine import WorkflowEngine

MAX_RESULTS = 1000


def _machine_item(m: StateMachine) -> dict:
    return {"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": m.created}


def _execution(ex: Execution, full: bool = True) -> dict:
    out: dict[str, Any] = {"executionArn": ex.arn, "stateMachineArn": ex.machine_arn,
                           "name": ex.name, "status": ex.status, "startDate": ex.start}
    if ex.stop is not None:
        out["stopDate"] = ex.stop
    if full:
        out["input"] = ex.input
        out["inputDetails"] = {"included": True}
        for key in ("output", "error", "cause"):
            if getattr(ex, key) is not None:
                out[key] = getattr(ex, key)
        if ex.output is not None:
            out["outputDetails"] = {"included": True}
        if ex.trace:
            out["traceHeader"] = ex.trace
    return out


def details_key(event_type: str) -> str | None:
    """The HistoryEvent member that holds an event type's details (None: it has none)."""
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    if event_type in ("LambdaFunctionStarted", "ParallelStateStarted", "ParallelStateSucceeded",
                      "ParallelStateFailed", "MapStateSucceeded", "MapStateFailed"):
        return None
    return event_type[0].lower() + event_type[1:] + "EventDetails"


def _event(e: HistoryEvent) -> dict:
    out: dict[str, Any] = {"timestamp": e.timestamp, "type": e.type, "id": e.id,
                           "previousEventId": e.previous_id}
    key = details_key(e.type)
    if key is not None:
        out[key] = e.details
    return out


def _page(items: list, body: dict) -> tuple[list, str | None]:
    limit = int(body.get("maxResults") or MAX_RESULTS)
    if not 0 < limit <= MAX_RESULTS:
        raise InvalidParameter("maxResults", f"must be in 1..{MAX_RESULTS}")
    start = _token(body)
    page = items[start:start + limit]
    return page, str(start + limit) if start + limit < len(items) else None


def _token(body: dict) -> int:
    """A nextToken this server handed out (an offset or an event id)."""
    from runner.errors import InvalidToken  # here: keeps the import block as main has it

    token = body.get("nextToken") or "0"
    if not str(token).isdigit():
        raise InvalidToken("nextToken", f"{token!r} is not a token this server returned; "
                           "pass the nextToken of the previous page")
    return int(token)


def _require(body: dict, key: str) -> Any:
    value = body.get(key)
    if value in (None, ""):
        raise InvalidParameter(key, "is required")
    return value


def create_state_machine(engine: WorkflowEngine, body: dict) -> dict:
    m = engine.create_machine(_require(body, "name"), _require(body, "definition"),
                              body.get("type") or "STANDARD", body.get("roleArn") or "")
    return {"stateMachineArn": m.arn, "creationDate": m.created}


def describe_state_machine(engine, body):
    m = engine.resolve(_require(body, "stateMachineArn"))
    return {**_machine_item(m), "status": "ACTIVE", "definition": m.definition,
            "roleArn": m.role_arn or "arn:aws:iam::123456789012:role/runner"}


def list_state_machines(engine, body):
    page, token = _page(engine.list_machines(), body)
    out: dict[str, Any] = {"stateMachines": [_machine_item(m) for m in page]}
    if token:
        out["nextToken"] = token
    return out


def update_state_machine(engine, body):
    m = engine.update_machine(_require(body, "stateMachineArn"), body.get("definition"),
                              body.get("roleArn"))
    return {"updateDate": m.updated}


def delete_state_machine(engine, body):
    engine.delete_machine(_require(body, "stateMachineArn"))
    return {}


def validate_state_machine_definition(engine, body):
    try:
        engine.validate(_require(body, "definition"))
    except InvalidDefinition as exc:
        return {"result": "FAIL", "truncated": False, "diagnostics": [
            {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": exc.message,
             "location": exc.field}]}
    return {"result": "OK", "diagnostics": [], "truncated": False}


def _trace(body) -> str:
    """StartExecution's `traceHeader` (an X-Ray header; the HTTP front fills it from the
    request's X-Amzn-Trace-Id or traceparent when the body has none). A malformed one is
    ignored, as a tracing header never fails a request."""
    header = body.get("traceHeader")
    return (trace.from_headers(header, None) or "") if isinstance(header, str) else ""


def start_execution(engine, body):
    ex = engine.start_execution(_require(body, "stateMachineArn"), body.get("name"),
                                body.get("input"), trace=_trace(body))
    return {"executionArn": ex.arn, "startDate": ex.start}


def start_sync_execution(engine, body):
    ex = engine.start_execution(_require(body, "stateMachineArn"), body.get("name"),
                                body.get("input"), sync=True, trace=_trace(body))
    return _execution(ex)


def describe_execution(engine, body):
    return _execution(engine.describe_execution(_require(body, "executionArn")))


def list_executions(engine, body):
    items = engine.list_executions(_require(body, "stateMachineArn"), body.get("statusFilter"))
    page, token = _page(items, body)
    out: dict[str, Any] = {"executions": [_execution(e, full=False) for e in page]}
    if token:
        out["nextToken"] = token
    return out


def get_execution_history(engine, body):
    limit = int(body.get("maxResults") or MAX_RESULTS)
    if not 0 < limit <= MAX_RESULTS:
        raise InvalidParameter("maxResults", f"must be in 1..{MAX_RESULTS}")
    after = _token(body)
    events = engine.history(_require(body, "executionArn"),
                            reverse=bool(body.get("reverseOrder")), after=after, limit=limit + 1)
    more = len(events) > limit
    events = events[:limit]
    if body.get("includeExecutionData") is False:
        events = [HistoryEvent(e.id, e.previous_id, e.timestamp, e.type,
                               {k: v for k, v in e.details.items()
                                if k not in ("input", "output")}) for e in events]
    out: dict[str, Any] = {"events": [_event(e) for e in events]}
    if more:
        out["nextToken"] = str(events[-1].id)
    return out


def stop_execution(engine, body):
    ex = engine.stop_execution(_require(body, "executionArn"), body.get("error"),
                               body.get("cause"))
    return {"stopDate": ex.stop}


OPERATIONS: dict[str, Callable[[WorkflowEngine, dict], dict]] = {
    "CreateStateMachine": create_state_machine,
    "DescribeStateMachine": describe_state_machine,
    "ListStateMachines": list_state_machines,
    "UpdateStateMachine": update_state_machine,
    "DeleteStateMachine": delete_state_machine,
    "ValidateStateMachineDefinition": validate_state_machine_definition,
    "StartExecution": start_execution,
    "StartSyncExecution": start_sync_execution,
    "DescribeExecution": describe_execution,
    "ListExecutions": list_executions,
    "GetExecutionHistory": get_execution_history,
    "StopExecution": stop_execution,
}


def call(engine: WorkflowEngine, operation: str, body: dict) -> dict:
    op = OPERATIONS.get(operation)
    if op is None:
        raise UnknownStepFunctionsOperation("X-Amz-Target", f"AWSStepFunctions.{operation} is not an "
                               f"operation of this server; supported: {', '.join(OPERATIONS)}")
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object")
    return op(engine, body)
