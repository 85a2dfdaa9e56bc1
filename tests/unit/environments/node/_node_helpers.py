"""Shared helpers for the Node.js runtime tests: versions of the guests/node examples and requests.

Tests need a `node` binary; without one they fail (the nodejs backend is missing) rather than
being skipped: this project's machines all have Node 20.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import psutil

from runner.environments.base import InvokeRequest
from runner.model import FunctionConfig, FunctionVersion

REPO = Path(__file__).resolve().parents[4]
GUESTS = REPO / "guests" / "node"


def version(code_dir: str | os.PathLike, handler: str = "index.handler", name: str = "fn",
            revision: int = 1, **config) -> FunctionVersion:
    cfg = FunctionConfig(runtime="nodejs", handler=handler, **config)
    return FunctionVersion(name, "$LATEST", revision, cfg, "0" * 64, str(code_dir))


def guest(name: str, handler: str = "index.handler", **config) -> FunctionVersion:
    return version(GUESTS / name, handler, name=name, **config)


def request(payload, timeout_s: float = 3.0, request_id: str | None = None) -> InvokeRequest:
    rid = request_id or str(uuid.uuid4())
    return InvokeRequest(
        request_id=rid,
        payload=json.dumps(payload).encode(),
        timeout_s=timeout_s,
        deadline=time.monotonic() + timeout_s,
        context={
            "function_name": "fn",
            "function_version": "$LATEST",
            "invoked_function_arn": "arn:aws:lambda:local-1:000000000000:function:fn",
            "memory_limit_in_mb": 256,
            "log_group_name": "/aws/lambda/fn",
            "log_stream_name": "2026/01/01/[$LATEST]1",
            "deadline_ms": int(time.time() * 1000 + timeout_s * 1000),
        },
    )


def write_code(root: Path, files: dict[str, str]) -> Path:
    """Lay out a code directory from {relative path: source}, world-readable as the registry's
    code store makes it (guests may run as an unprivileged uid of their own)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        d.chmod(0o755)
    return root


def guest_process(env) -> psutil.Process:
    """The node process of an environment: its own pid, or under confinement/namespaces.py's
    sandbox (bwrap -> prlimit -> setpriv -> node) the descendant that runs node."""
    proc = psutil.Process(env.pid)
    for p in [proc, *proc.children(recursive=True)]:
        if p.name() == "node":
            return p
    raise AssertionError(f"no node process under pid {env.pid}")


def code_path(code_dir, *rel: str) -> set[str]:
    """Where the guest sees a code file: its host path, or /var/task under isolation."""
    tail = "/".join(rel)
    return {f"{code_dir}/{tail}".rstrip("/"), f"/var/task/{tail}".rstrip("/")}
