"""The pool layer's protocol: hand out execution environments, warm when possible.

The pool owns every environment's life after creation: it decides when one is made (a cold
start), reused (warm), kept idle, and destroyed (idle TTL, memory pressure, a version retired,
an environment no longer trustworthy). It enforces per-function and host-wide concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.environments.base import ExecutionEnvironment
from runner.model import FunctionVersion


@dataclass
class Lease:
    """One environment lent to one invocation."""

    env: ExecutionEnvironment
    version: FunctionVersion
    cold: bool  # True if the environment was created (init ran) for this invocation
    # The pool's own record the lease counts against, so release() finds it even after the
    # version was retired (its record is then no longer under the version's key).
    slot: Any = field(default=None, repr=False, compare=False)


class EnvironmentPool(Protocol):
    def acquire(self, version: FunctionVersion) -> Lease:
        """A READY environment of `version`, warm if one is idle, else a new one (cold start).

        Raises TooManyRequests past the function's concurrency or the host's environment limit,
        and FunctionInitError / FunctionTimeout when a new environment's init fails (the
        exception carries `init_logs` and `init_duration_ms` for the invocation's report).
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
