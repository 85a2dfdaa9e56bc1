"""Workflows: Amazon States Language state machines whose Task states invoke the runner's
functions, with durable (Standard) and in-memory (Express) executions (docs/workflows.md).

Layer 5.5: above the invocation layer (a workflow's task ends in an invocation, reached
through the `invoke` callable the engine is given), below the service edges. Modules:
`asl.py` (parse and validate definitions; `asl_values.py`: what their fields may hold),
`paths.py` (JSONPath data flow), `intrinsics.py` (the States.* functions), `choice.py` (Choice
rules), `tasks.py` (Task resources and their failures), `interpreter.py` (running states,
journaling transitions), `branches.py` (Parallel and Map: child runs on threads, stop and
failure between them), `engine.py` (machines, executions, resume after a restart),
`execution_driver.py` (an execution's thread, under its lease, to a recorded end), `api.py`
(the Step Functions JSON API's operations, shared by the HTTP and gRPC edges). Storage:
runner/storage/workflows.py.
"""
