"""What the push command groups (schedule, trigger, topic) share: their stubs on a channel
and JSON output. The generated modules are imported inside functions (client.py says why)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from runner.cli.client import connect, info_dict, platform_error


def with_push_stub(service: str, call: Callable[[Any, Any], int]) -> Callable[[Any], int]:
    """A command that runs `call(args, stub)` with the stub of `service` (schedules,
    triggers or topics) on a fresh channel; failures are platform errors (exit 2)."""
    def run(args) -> int:
        import importlib

        stubs = connect(args)
        with stubs.channel:
            try:
                mod = importlib.import_module(f"runner.service.proto.{service}_pb2_grpc")
                stub = getattr(mod, f"{service.capitalize()}Stub")(stubs.channel)
                return call(args, stub)
            except Exception as exc:
                return platform_error(exc)
    return run


def print_json(message) -> int:
    print(json.dumps(info_dict(message), indent=2))
    return 0


def json_arg(text: str | None, field: str) -> str:
    """A JSON option checked locally, so a typo fails before any call."""
    if text is None:
        return ""
    try:
        json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"runner: {field}: not JSON ({exc})")
    return text
