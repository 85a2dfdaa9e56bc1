"""An in-process backend for tests of the layers above the environments (pool, invocation,
service).

`FakeBackend` makes environments that run a Python callable in the calling thread. It keeps
the lifecycle rules of base.py (states, destroy idempotent, errors in the outcome) and counts
what happened, so pool and service tests can assert on cold starts and destruction without
processes. It isolates nothing: never use it for untrusted code.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

from runner.environments.base import EnvState, InvokeOutcome, InvokeRequest
from runner.errors import (
    FunctionError,
    FunctionInitError,
    FunctionOutOfMemory,
    FunctionTimeout,
    HandlerError,
)
from runner.model import FunctionVersion

Handler = Callable[[Any, dict], Any]


class FakeEnvironment:
    def __init__(self, backend: "FakeBackend", version: FunctionVersion) -> None:
        self.backend = backend
        self.version = version
        self.state = EnvState.NEW
        self.init_duration_ms: float | None = None
        self.init_logs = b""
        self._destroyed = False

    def start(self) -> None:
        self.state = EnvState.INIT
        t0 = time.perf_counter()
        gate = self.backend.start_gate
        if gate is not None:
            gate.wait(30)
        if self.backend.init_error:
            self.state = EnvState.DEAD
            raise FunctionInitError(self.backend.init_error, "Runtime.ImportModuleError")
        if self.backend.init_delay_s:
            time.sleep(self.backend.init_delay_s)
        self.init_duration_ms = (time.perf_counter() - t0) * 1000
        with self.backend.lock:
            self.backend.created += 1
            self.backend.live += 1
        self.state = EnvState.READY

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        assert self.state is EnvState.READY, f"invoke in state {self.state}"
        self.state = EnvState.BUSY
        t0 = time.perf_counter()
        event = json.loads(request.payload)
        error: FunctionError | None = None
        payload = None
        try:
            payload = json.dumps(self.backend.handler(event, request.context)).encode()
        except FunctionError as exc:
            error = exc
        except Exception as exc:
            error = HandlerError(str(exc), type(exc).__name__)
        reusable = not (error and error.error_type in self.backend.fatal_types)
        self.state = EnvState.READY if reusable else EnvState.DEAD
        if not reusable:
            self.destroy()
        return InvokeOutcome(payload, error, b"", (time.perf_counter() - t0) * 1000, 0, reusable)

    def destroy(self) -> None:
        if self.state is EnvState.DEAD and self._destroyed:
            return
        with self.backend.lock:
            if not self._destroyed and self.init_duration_ms is not None:
                self.backend.live -= 1
                self.backend.destroyed += 1
        self._destroyed = True
        self.state = EnvState.DEAD

    def memory_bytes(self) -> int:
        return 0


class FakeBackend:
    runtime = "python"

    def __init__(self, handler: Handler = lambda e, c: e, *, init_delay_s: float = 0.0) -> None:
        self.handler = handler
        self.init_delay_s = init_delay_s
        self.init_error: str | None = None
        self.slow_start = False  # Backend.slow_start (base.py): a test of pool waiters sets it
        # When set, start() waits for it: a test holds a start in flight (pool waiters).
        self.start_gate: threading.Event | None = None
        # Errors after which an environment is not reused, as the real ones decide.
        self.fatal_types: set[str] = {FunctionTimeout.error_type, FunctionOutOfMemory.error_type}
        self.lock = threading.Lock()
        self.created = 0
        self.destroyed = 0
        self.live = 0
        self.prepared: list[str] = []
        self.forgotten: list[str] = []

    def prepare(self, version: FunctionVersion) -> None:
        self.prepared.append(version.key)

    def create(self, version: FunctionVersion) -> FakeEnvironment:
        return FakeEnvironment(self, version)

    def forget(self, version: FunctionVersion) -> None:
        self.forgotten.append(version.key)

    def close(self) -> None:
        pass
