"""Backends by runtime name: the one place a new runtime is registered (`default_backends`).

Python runs on the zygote backend (python/zygote.py) or, with RUNNER_PYTHON_ZYGOTE=off, on the
plain `ProcessBackend` (process/backend.py, re-exported here for its many users); Node.js on a
`ProcessBackend` when a `node` binary is found; wasm on its own backend (wasm/backend.py).
"""

from __future__ import annotations

import os
import tempfile

from runner import settings
from runner.confinement import doctor
from runner.environments.base import Backend
from runner.environments.node.process_policy import find_node
from runner.environments.node.runtime import NodeRuntime
from runner.environments.node.snapshot import SnapshotStore
from runner.environments.process.backend import ProcessBackend
from runner.environments.python.runtime import PythonRuntime
from runner.environments.python.zygote import ZygoteBackend
from runner.environments.wasm.backend import WasmBackend

__all__ = ["ProcessBackend", "default_backends"]


def default_backends(work_dir: str | None = None) -> dict[str, Backend]:
    """One backend per runtime this host can run. `work_dir` holds per-environment scratch."""
    doctor.warn_if_degraded()  # once per process: says which protections this host lacks
    tmp_root = work_dir or tempfile.mkdtemp(prefix="runner-envs-")
    os.makedirs(tmp_root, exist_ok=True)
    # Python environments fork from a per-version zygote (python/zygote.py);
    # RUNNER_PYTHON_ZYGOTE=off spawns a fresh interpreter per environment instead (for
    # comparison and debugging).
    python: Backend
    if settings.current().python_zygote:
        python = ZygoteBackend(PythonRuntime(), tmp_root)
    else:
        python = ProcessBackend(PythonRuntime(), tmp_root)
    backends: dict[str, Backend] = {"python": python}
    backends["wasm"] = WasmBackend(os.path.join(tmp_root, "wasm"),
                                   cache_dir=os.path.join(tmp_root, "wasm-cache") if work_dir else None)
    node = find_node()  # Node.js is optional: without a `node` binary the runtime is absent
    if node is not None:
        # Startup snapshots are opt-in per function (RUNNER_NODE_SNAPSHOT=1 in its environment).
        snapshots = SnapshotStore(node, os.path.join(tmp_root, "node-snapshots"))
        backends["nodejs"] = ProcessBackend(NodeRuntime(node, snapshots), tmp_root)
    return backends
