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
    # Every environment is a process launch: 60 ms of CPU for `node` on an idle host, hundreds
    # under load (base.py, Backend.start_wait_s).
    start_wait_s = 0.05

    def __init__(self, runtime: ProcessRuntime, tmp_root: str) -> None:
        self.runtime_impl = runtime
        self.runtime = runtime.name
        self.tmp_root = tmp_root

    @property
    def spare_init(self) -> bool:
        """Backend.spare_init (base.py), as the runtime says: a ProcessRuntime may have a
        `spare_init` of its own (Node.js); without one, a spare is launched only."""
        return bool(getattr(self.runtime_impl, "spare_init", False))

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
