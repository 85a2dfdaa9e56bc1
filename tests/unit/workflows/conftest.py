"""An engine on a temporary data directory whose Task states call Python functions in this
process (the interpreter's own behaviour is under test, not the runtimes')."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from runner.errors import ResourceNotFound
from runner.workflows.engine import WorkflowEngine


class Functions:
    """name -> handler(event) -> result; a handler raising FunctionFails is a function error."""

    def __init__(self) -> None:
        self.handlers = {}
        self.calls: list[tuple[str, object]] = []

    def __call__(self, name, payload, qualifier=None):
        event = json.loads(payload)
        self.calls.append((name, event))
        handler = self.handlers.get(name)
        if handler is None:
            raise ResourceNotFound(f"Function not found: {name}")
        try:
            out = handler(event)
        except FunctionFails as exc:
            doc = {"errorMessage": str(exc), "errorType": exc.error_type, "stackTrace": []}
            return SimpleNamespace(payload=json.dumps(doc).encode(), function_error="Unhandled",
                                   executed_version="$LATEST", request_id="rid")
        return SimpleNamespace(payload=json.dumps(out).encode(), function_error=None,
                               executed_version=qualifier or "$LATEST", request_id="rid")


class FunctionFails(Exception):
    def __init__(self, error_type: str, message: str = "failed") -> None:
        super().__init__(message)
        self.error_type = error_type


@pytest.fixture
def functions():
    return Functions()


@pytest.fixture
def engine(tmp_path, functions):
    e = WorkflowEngine(str(tmp_path), functions)
    yield e
    e.close()


def run(engine, definition: dict, value=None, type: str = "STANDARD", name: str = "m"):
    """(status, output-or-(error, cause)) of one execution of `definition`."""
    m = engine.create_machine(name, json.dumps(definition), type)
    ex = engine.start_execution(m.arn, input=json.dumps({} if value is None else value))
    ex = engine.wait(ex.arn, 30)
    if ex.status == "SUCCEEDED":
        return ex.status, json.loads(ex.output)
    return ex.status, (ex.error, ex.cause)
