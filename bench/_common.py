"""Helpers shared by the isolation benchmarks: functions from source, modes, JSON output."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
import time
import uuid

import runner.confinement.namespaces
from runner.confinement import limits
from runner.environments.base import InvokeRequest
from runner.model import FunctionConfig, FunctionVersion

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
_rev = iter(range(1, 10**6))


def set_mode(namespaces: bool, cgroups: bool) -> None:
    """Switch isolation layers for the environments created from now on (same process)."""
    os.environ["RUNNER_ISOLATION"] = "on" if namespaces else "off"
    os.environ["RUNNER_CGROUPS"] = "on" if cgroups else "off"
    runner.confinement.namespaces.mode.cache_clear()
    limits.cgroup_layout.cache_clear()


def version(root: str, name: str, source: str, **cfg) -> FunctionVersion:
    code = os.path.join(root, name)
    os.makedirs(code, exist_ok=True)
    with open(os.path.join(code, "app.py"), "w") as f:
        f.write(textwrap.dedent(source))
    os.chmod(code, 0o755)
    os.chmod(os.path.join(code, "app.py"), 0o644)
    cfg.setdefault("timeout_s", 60)
    return FunctionVersion(name, "$LATEST", next(_rev), FunctionConfig("python", "app.handler", **cfg),
                           "bench", code)


def request(payload: dict, timeout_s: float = 60) -> InvokeRequest:
    return InvokeRequest(str(uuid.uuid4()), json.dumps(payload).encode(), timeout_s,
                         time.monotonic() + timeout_s)


def scratch() -> str:
    os.makedirs(os.path.join(REPO, ".data"), exist_ok=True)
    return tempfile.mkdtemp(prefix="bench-", dir=os.path.join(REPO, ".data"))


def cleanup(root: str) -> None:
    shutil.rmtree(root, ignore_errors=True)


def write_json(name: str, data: dict, path: str | None = None) -> str:
    """Write `data` to `path`, or to bench/results/`name` when no path is given; returns the
    path written."""
    if path is None:
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return path
