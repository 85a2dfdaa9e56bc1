"""`ProcessBackend`: the `Backend` (base.py) of a subprocess runtime.

Adapts a `ProcessRuntime` (python/runtime.py, node/runtime.py) to the protocol the pool uses:
one `ProcessEnvironment` per environment, the runtime's code check at deploy, and its optional
per-version caches (`forget`) and shared resources (`close`). The Python runtime's default
backend is the zygote's instead (python/zygote.py), which builds on the same environment.
"""

from __future__ import annotations

from runner.environments.process import teardown
from runner.environments.process.environment import ProcessEnvironment, ProcessRuntime
from runner.model import FunctionVersion

TEARDOWN_DRAIN_S = 10.0  # above any one teardown's bounded waits (teardown.py)


class ProcessBackend:
    slow_start = True  # every environment is a process launch (base.py, Backend.slow_start)

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
        # Environments destroyed just before (the pool's close) finish their teardown first:
        # a closed backend leaves no cgroup or scratch directory behind.
        teardown.drain(TEARDOWN_DRAIN_S)
        close = getattr(self.runtime_impl, "close", None)  # optional: e.g. Node's snapshot store
        if close is not None:
            close()
