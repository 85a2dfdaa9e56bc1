"""Backends by runtime name: the one place a new runtime is registered.

`ProcessBackend` adapts a `ProcessRuntime` (python.py, node.py) to the `Backend` protocol of
base.py; the wasm backend implements it directly.
"""

from __future__ import annotations

import os
import tempfile

from runner import settings
from runner.environments.base import Backend
from runner.environments.process.environment import ProcessEnvironment, ProcessRuntime
from runner.model import FunctionVersion


class ProcessBackend:
    def __init__(self, runtime: ProcessRuntime, tmp_root: str) -> None:
        self.runtime_impl = runtime
        self.runtime = runtime.name
        self.tmp_root = tmp_root

    def prepare(self, version: FunctionVersion) -> None:
        self.runtime_impl.check_code(version)

    def create(self, version: FunctionVersion) -> ProcessEnvironment:
        return ProcessEnvironment(version, self.runtime_impl, self.tmp_root)

    def forget(self, version: FunctionVersion) -> None:
        forget = getattr(self.runtime_impl, "forget", None)  # optional: per-version caches
        if forget is not None:
            forget(version)

    def close(self) -> None:
        close = getattr(self.runtime_impl, "close", None)  # optional: e.g. Node's snapshot store
        if close is not None:
            close()


def default_backends(work_dir: str | None = None) -> dict[str, Backend]:
    """One backend per runtime this host can run. `work_dir` holds per-environment scratch."""
    from runner.confinement import doctor
    from runner.environments.python.runtime import PythonRuntime
    from runner.environments.wasm.backend import WasmBackend

    doctor.warn_if_degraded()  # once per process: says which protections this host lacks
    tmp_root = work_dir or tempfile.mkdtemp(prefix="runner-envs-")
    os.makedirs(tmp_root, exist_ok=True)
    # Python environments fork from a per-version zygote (zygote.py); RUNNER_PYTHON_ZYGOTE=0
    # spawns a fresh interpreter per environment instead (for comparison and debugging).
    if settings.current().python_zygote:
        from runner.environments.python.zygote import ZygoteBackend

        python: Backend = ZygoteBackend(PythonRuntime(), tmp_root)
    else:
        python = ProcessBackend(PythonRuntime(), tmp_root)
    backends: dict[str, Backend] = {"python": python}
    backends["wasm"] = WasmBackend(os.path.join(tmp_root, "wasm"), cache_dir=os.path.join(tmp_root, "wasm-cache") if work_dir else None)
    from runner.environments.node.runtime import NodeRuntime, find_node

    node = find_node()  # Node.js is optional: without a `node` binary the runtime is absent
    if node is not None:
        from runner.environments.node.snapshot import SnapshotStore

        # Startup snapshots are opt-in per function (RUNNER_NODE_SNAPSHOT=1 in its environment).
        snapshots = SnapshotStore(node, os.path.join(tmp_root, "node-snapshots"))
        backends["nodejs"] = ProcessBackend(NodeRuntime(node, snapshots), tmp_root)
    return backends
