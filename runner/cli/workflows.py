"""`runner workflow create / update / delete / start / describe / history / list / stop`: a
client of the Workflows gRPC service (Step Functions state machines; docs/workflows.md).

An EXECUTION is its ARN or MACHINE:NAME (a Standard execution's short form). Output is the
Step Functions API's JSON; `describe` exits 1 when the execution FAILED, TIMED_OUT or was
ABORTED, and `start --sync` likewise, so scripts can test the outcome.
"""

from __future__ import annotations

import json
import sys

from runner.cli.client import EXIT_FUNCTION_ERROR, add_address_argument, platform_error

PREFIX = "arn:aws:states:us-east-1:123456789012:"


def _machine(name: str) -> str:
    return name if name.startswith("arn:") else f"{PREFIX}stateMachine:{name}"


def _execution(text: str) -> str:
    return text if text.startswith("arn:") else f"{PREFIX}execution:{text}"


def _call(args, operation: str, body: dict) -> dict:
    import grpc

    from runner.cli.client import address
    from runner.service.grpc.server import SERVER_OPTIONS
    from runner.service.proto import workflows_pb2 as wpb
    from runner.service.proto import workflows_pb2_grpc as wpb_grpc

    with grpc.insecure_channel(address(args), options=SERVER_OPTIONS[:2]) as channel:
        stub = wpb_grpc.WorkflowsStub(channel)
        reply = getattr(stub, operation)(wpb.JsonRequest(body=json.dumps(body)))
    return json.loads(reply.body)


def _print(doc: dict) -> None:
    print(json.dumps(doc, indent=2))


def _outcome(doc: dict) -> int:
    return EXIT_FUNCTION_ERROR if doc.get("status") in ("FAILED", "TIMED_OUT", "ABORTED") else 0


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path) as f:
        return f.read()


def cmd(fn):
    def run(args) -> int:
        try:
            return fn(args)
        except Exception as exc:
            return platform_error(exc)
    return run


@cmd
def _create(args) -> int:
    _print(_call(args, "CreateStateMachine", {"name": args.name, "definition": _read(args.definition),
                                              "type": args.type.upper()}))
    return 0


@cmd
def _update(args) -> int:
    _print(_call(args, "UpdateStateMachine", {"stateMachineArn": _machine(args.name),
                                              "definition": _read(args.definition)}))
    return 0


@cmd
def _delete(args) -> int:
    _call(args, "DeleteStateMachine", {"stateMachineArn": _machine(args.name)})
    print(f"deleted {args.name}")
    return 0


@cmd
def _start(args) -> int:
    body = {"stateMachineArn": _machine(args.name), "input": args.input or "{}"}
    if args.exec_name:
        body["name"] = args.exec_name
    doc = _call(args, "StartSyncExecution" if args.sync else "StartExecution", body)
    _print(doc)
    return _outcome(doc) if args.sync else 0


@cmd
def _describe(args) -> int:
    doc = _call(args, "DescribeExecution", {"executionArn": _execution(args.execution)})
    _print(doc)
    return _outcome(doc)


@cmd
def _history(args) -> int:
    events, token = [], None
    while True:
        body = {"executionArn": _execution(args.execution), "reverseOrder": args.reverse}
        if token:
            body["nextToken"] = token
        doc = _call(args, "GetExecutionHistory", body)
        events += doc["events"]
        token = doc.get("nextToken")
        if not token:
            break
    if args.json:
        _print({"events": events})
        return 0
    for e in events:
        details = next((v for k, v in e.items() if k.endswith("EventDetails")), {})
        what = details.get("name") or details.get("error") or details.get("resource") or ""
        print(f"{e['id']:>4}  {e['type']:<28} {what}")
    return 0


@cmd
def _list(args) -> int:
    if args.name:
        doc = _call(args, "ListExecutions", {"stateMachineArn": _machine(args.name)})
        if args.json:
            _print(doc)
            return 0
        print(f"{'STATUS':<10} {'NAME':<40} EXECUTION ARN")
        for e in doc["executions"]:
            print(f"{e['status']:<10} {e['name']:<40} {e['executionArn']}")
        return 0
    doc = _call(args, "ListStateMachines", {})
    if args.json:
        _print(doc)
        return 0
    print(f"{'TYPE':<9} {'NAME':<40} ARN")
    for m in doc["stateMachines"]:
        print(f"{m['type']:<9} {m['name']:<40} {m['stateMachineArn']}")
    return 0


@cmd
def _stop(args) -> int:
    body = {"executionArn": _execution(args.execution)}
    if args.error:
        body["error"] = args.error
    if args.cause:
        body["cause"] = args.cause
    _print(_call(args, "StopExecution", body))
    return 0


def add_commands(sub) -> None:
    wf = sub.add_parser("workflow", help="Step Functions state machines and their executions")
    wsub = wf.add_subparsers(dest="workflow_command", required=True)

    def parser(name, help, func):
        p = wsub.add_parser(name, help=help)
        add_address_argument(p)
        p.set_defaults(func=func)
        return p

    p = parser("create", "create a state machine from an ASL definition", _create)
    p.add_argument("name")
    p.add_argument("--definition", required=True, metavar="FILE", help="ASL JSON file ('-': stdin)")
    p.add_argument("--type", default="standard", choices=("standard", "express"))
    p = parser("update", "replace a state machine's definition", _update)
    p.add_argument("name")
    p.add_argument("--definition", required=True, metavar="FILE")
    p = parser("delete", "delete a state machine", _delete)
    p.add_argument("name")
    p = parser("start", "start an execution", _start)
    p.add_argument("name")
    p.add_argument("--input", help="the execution's input, JSON (default {})")
    p.add_argument("--sync", action="store_true", help="run an EXPRESS machine and wait for it")
    p.add_argument("--name", dest="exec_name", help="execution name (idempotent per input)")
    p = parser("describe", "an execution's status, input and output", _describe)
    p.add_argument("execution", help="ARN or MACHINE:NAME")
    p = parser("history", "an execution's history events", _history)
    p.add_argument("execution", help="ARN or MACHINE:NAME")
    p.add_argument("--reverse", action="store_true")
    p.add_argument("--json", action="store_true")
    p = parser("list", "state machines, or the executions of NAME", _list)
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p = parser("stop", "stop a running execution", _stop)
    p.add_argument("execution", help="ARN or MACHINE:NAME")
    p.add_argument("--error")
    p.add_argument("--cause")
