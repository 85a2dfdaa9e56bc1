"""The example functions under `guests/`, deployed by `runner serve --examples`.

Each example is a directory holding a `function.json` (runtime, handler and optional settings:
memory_mb, timeout_s, environment, name) beside its code; for WebAssembly the directory holds
the module. The function's name defaults to `<runtime dir>-<example dir>`, e.g. python-hello.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING

from runner import settings
from runner.errors import RunnerError

if TYPE_CHECKING:  # the CLI's client commands import this module; Runner is heavy (serve.py)
    from runner.invocation.runner import Runner

log = logging.getLogger(__name__)

MANIFEST = "function.json"


def default_guests_dir() -> str | None:
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = settings.current().examples_dir or os.path.join(here, "guests")
    return path if os.path.isdir(path) else None


def discover(root: str) -> list[tuple[str, dict, str]]:
    """(name, manifest, code path) for every example under `root`, sorted by name."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")) and d != "node_modules")
        if MANIFEST not in filenames:
            continue
        with open(os.path.join(dirpath, MANIFEST)) as f:
            manifest = json.load(f)
        rel = os.path.relpath(dirpath, root).split(os.sep)
        name = manifest.get("name") or "-".join(rel)
        code = manifest.get("code")
        found.append((name, manifest, os.path.join(dirpath, code) if code else dirpath))
        dirnames[:] = []  # an example's own subdirectories are its code, not more examples
    return sorted(found)


def deploy_examples(runner: Runner, root: str) -> list[str]:
    """Deploy every example whose runtime this host supports; returns the names deployed."""
    deployed = []
    for name, manifest, code in discover(root):
        config = {k: v for k, v in manifest.items() if k not in ("name", "code", "description")}
        try:
            runner.deploy(name, code, **config)
        except RunnerError as exc:
            log.warning("example %s not deployed: %s", name, exc)
            continue
        deployed.append(name)
    return deployed
