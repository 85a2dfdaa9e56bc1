"""The environments layer's protocol: one execution environment, and the backend that makes them.

An *execution environment* is one isolated instance of one immutable function version, able to
run one invocation at a time (Lambda's model). Its lifecycle::

    NEW --start()--> INIT --(init ok)--> READY <--invoke()--> BUSY
                        \\--(init error)--> DEAD          any --destroy()--> DEAD

Guarantees every backend gives (the pool above relies on them):

* `invoke()` never raises a `FunctionError`: a guest failure comes back in
  `InvokeOutcome.error`, with `reusable=False` whenever the guest's state can no longer be
  trusted (timeout, out of memory, crash). Only platform faults raise.
* A deadline is honoured: `invoke()` returns within the request's timeout plus a small
  kill-and-reap margin, whatever the guest does.
* No guest code runs before the environment's limits are applied.
* `destroy()` is idempotent, never raises, and leaves no process, cgroup or temp dir behind.

Backends live beside this file, registered in `backends.py`: `process/` (the subprocess
environment, shared by `python/` and `node/`), `wasm/` (wasmtime, in-process), `fake.py` (for
tests of the layers above).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from runner.errors import FunctionError
from runner.model import FunctionVersion


class EnvState(enum.Enum):
    NEW = "new"
    INIT = "init"
    READY = "ready"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(slots=True)
class InvokeRequest:
    """One invocation as an environment sees it."""

    request_id: str
    payload: bytes  # the event, JSON-encoded (validated at the edge)
    timeout_s: float  # the function's configured timeout, for the error message
    deadline: float  # time.monotonic() by which the guest must have answered
    context: dict[str, Any] = field(default_factory=dict)  # Lambda context fields, see below
    # context keys: function_name, function_version, invoked_function_arn, memory_limit_in_mb,
    # log_group_name, log_stream_name, client_context, identity. Runtimes expose them with
    # their language's naming. The Runner passes the same dict object to every invocation of
    # a version with the same qualifier (environments send it to a guest only when it is not
    # the one they sent last), so it is read-only: never mutate a context once passed.
    deadline_ms: int = 0  # wall clock (epoch ms) by which the guest must answer; 0: context's
    trace_id: str = ""  # the caller's X-Amzn-Trace-Id (invocation/trace.py); "" = none
    # InvokeWithResponseStream (decision 075): called with each chunk of a streamed response
    # as the guest writes it, from the thread running invoke(); the outcome's payload then holds
    # only what was not streamed. Environments that cannot stream ignore it. It must not block
    # for long (the guest waits) and must not raise.
    chunk_sink: Callable[[bytes], None] | None = None


@dataclass(slots=True)
class InvokeOutcome:
    """What one invocation produced inside the environment."""

    payload: bytes | None  # the JSON-encoded response, None on error
    error: FunctionError | None
    logs: bytes  # the guest's stdout+stderr during this invocation (bounded by the backend)
    duration_ms: float  # handler time, measured by the host
    max_memory_bytes: int  # peak memory of the environment so far (0 if unknown)
    reusable: bool = True  # False: the pool must destroy this environment


@runtime_checkable
class ExecutionEnvironment(Protocol):
    """One isolated instance of one function version."""

    version: FunctionVersion
    state: EnvState
    init_duration_ms: float | None  # time the init phase took; set by start()
    init_logs: bytes  # what the guest printed during init

    def start(self) -> None:
        """Create the environment and run the function's init phase (module-level code).

        Raises `FunctionInitError` (or `FunctionTimeout` if init runs past the function's
        timeout) and leaves the environment DEAD; otherwise it is READY.
        """

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """Run one invocation. READY -> BUSY -> READY (or DEAD if not reusable)."""

    def destroy(self) -> None:
        """Kill everything the environment holds. Idempotent; never raises."""

    def memory_bytes(self) -> int:
        """Current resident memory attributable to this environment (for stats and eviction)."""

    # Optional: `launched_alive() -> bool`, whether the environment's process was started and
    # is still running. Environments with a process of their own have it: one killed from
    # outside while idle (OOM killer, an operator, its zygote's death) is then dropped by the
    # pools instead of being handed out. In-process environments (wasm) need none: see is_alive.
    #
    # Optional: `freeze()`, called by the pool when the environment goes idle: its processes
    # get no CPU until the next invoke(), which thaws them first (Lambda freezes idle
    # environments the same way). Raises OSError if it cannot; the pool then replaces the
    # environment. In-process environments need none: nothing of a wasm guest runs between calls.


def is_alive(env: ExecutionEnvironment) -> bool:
    """Whether `env` can still take an invocation as far as its process goes: its
    `launched_alive()` where it has one, else True (nothing outside can kill it alone)."""
    check = getattr(env, "launched_alive", None)
    return bool(check()) if check is not None else True


@runtime_checkable
class Backend(Protocol):
    """Makes execution environments for one runtime ("python", "nodejs", "wasm")."""

    runtime: str

    def prepare(self, version: FunctionVersion) -> None:
        """Per-version work done once, before the first environment: validate the code, compile
        a wasm module, build a snapshot or zygote. Idempotent. Raises `InvalidCodePackage` for
        code that can never run (called at deploy time too, so bad code fails the deploy)."""

    def create(self, version: FunctionVersion) -> ExecutionEnvironment:
        """A NEW environment for `version`; the caller then calls start()."""

    # Optional: `start_wait_s: float`, about what one start costs: a call that needs a new
    # environment while others of its version are busy first waits up to this long for one
    # to be released, then starts one and takes whichever comes first (pool/waiters.py,
    # decision 081). Absent or 0: the start runs in the caller's thread (wasm instantiates in
    # microseconds; nothing is gained by waiting).

    # Optional: `spare_init: bool`, whether a spare the pool starts ahead of demand
    # (pool/prestart.py) also runs start(), its init phase, within prestart's PREINIT_BUDGET_S
    # (the environment's `init_budget_s`), so that a cold start pays its first invocation only.
    # Absent or False: the spare is launch()ed only and the cold start runs start(). Node.js:
    # on (decision 069) unless RUNNER_NODE_PREINIT=off; wasm: always (launch() does nothing
    # in-process, decision 082); Python: off, its zygote's child inherited the init already.

    # Optional: `prewarm(version) -> None` builds the version's snapshot ahead of demand (the
    # Python backend's zygote, which runs the init phase once). The pool calls it at deploy
    # time when present; an init failure there is left for the first invocation to report.

    # Optional: `reap_idle(idle_s: float, now: float | None = None) -> int` closes the
    # per-version state (snapshot processes: the Python zygote) that nothing has used for
    # `idle_s` seconds and that no live environment depends on, and returns how many it closed
    # (`now`: time.monotonic(), for tests). The pool's reaper calls it every pass with its
    # snapshot TTL (pool/upkeep.py, decision 086); the next cold start of such a version
    # builds its state again. It must never close state a start is using or is about to use.
    # Backends whose per-version state costs no process (wasm's compiled modules) need none.

    def forget(self, version: FunctionVersion) -> None:
        """The version will not be invoked again: drop its snapshots, zygotes, caches."""

    def close(self) -> None:
        """Release everything; called once at shutdown."""
