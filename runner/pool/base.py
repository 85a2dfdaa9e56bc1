"""The pool layer's protocol: hand out execution environments, warm when possible.

The pool owns every environment's life after creation: it decides when one is made (a cold
start), reused (warm), kept idle, and destroyed (idle TTL, memory pressure, a version retired,
an environment no longer trustworthy). It enforces per-function and host-wide concurrency.

`acquire` answers with a `Lease`, or with an `InitFailure` when the environment it started
for the invocation failed its init: Lambda reports that failure on the invocation (its error,
the init's output in the log, the init duration in the report), so it is a result the
invocation layer formats, not an exception for it to pick apart. Platform conditions
(TooManyRequests, a shut-down pool, a host failure) are raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.environments.base import ExecutionEnvironment
from runner.errors import FunctionError
from runner.model import FunctionVersion


@dataclass(slots=True)
class Lease:
    """One environment lent to one invocation."""

    env: ExecutionEnvironment
    version: FunctionVersion
    cold: bool  # True if the environment was created (init ran) for this invocation
    # The pool's own record the lease counts against, so release() finds it even after the
    # version was retired (its record is then no longer under the version's key).
    slot: Any = field(default=None, repr=False, compare=False)
    since: float = field(default=0.0, repr=False, compare=False)  # time.monotonic() lent out


@dataclass(frozen=True)
class InitFailure:
    """A cold start whose init failed: what the invocation reports instead of running."""

    error: FunctionError  # FunctionInitError and its kinds, or FunctionTimeout during init
    logs: bytes  # the init phase's output (b"" if the environment never started)
    duration_ms: float | None  # how long init ran, None if it was never measured


class EnvironmentPool(Protocol):
    def acquire(self, version: FunctionVersion) -> Lease | InitFailure:
        """A READY environment of `version`, warm if one is idle, else a new one (cold start),
        or the InitFailure of that new one. An InitFailure holds nothing: there is no lease to
        release, and the concurrency slot the start took is free again.

        Raises TooManyRequests past the function's concurrency or the host's environment limit.
        """

    def release(self, lease: Lease, reusable: bool) -> None:
        """Give the environment back: kept idle if reusable and its version is live, else
        destroyed."""

    def retire(self, version: FunctionVersion) -> None:
        """The version will not be invoked again: idle environments are destroyed now, busy
        ones when released (so in-flight invocations finish)."""

    def stats(self) -> dict:
        """Counts per version and in total: idle, busy, starting, cold starts."""

    def close(self) -> None:
        """Destroy every environment; wait for none. Called once at shutdown."""
