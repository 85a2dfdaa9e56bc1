"""The Lambda context an invocation carries (function name, version, ARN, memory, log group
and stream), made once per version, qualifier and UTC day and reused (docs/decisions/037).

Environments send a guest the context only when a request carries another object than the
last one, so reuse is what keeps it off the warm path. A context is read-only once made
(InvokeRequest.context says why): identity stands for equality.
"""

from __future__ import annotations

import time

from runner.model import FunctionVersion, function_arn

# Contexts kept for reuse (one per version, qualifier and day); past this the cache is
# dropped whole. 4096 covers far more live versions than one host serves.
MAX_CACHED_CONTEXTS = 4096


class ContextCache:
    """The contexts of recent invocations. Safe to share between threads without a lock: a
    race can only build the same dict twice (one is kept), or drop the cache a little early."""

    def __init__(self) -> None:
        self._contexts: dict[tuple, tuple[int, dict]] = {}

    def __len__(self) -> int:
        return len(self._contexts)

    def get(self, version: FunctionVersion, qualifier: str | None, now: float) -> dict:
        """The context fields of an invocation of `version` at `now` (all but its deadline).
        A new dict when the version, qualifier or UTC day changes (the log stream's name has
        the date), else the same one."""
        day = int(now // 86400)
        key = (version.key, version.version, qualifier)
        hit = self._contexts.get(key)
        if hit is not None and hit[0] == day:
            return hit[1]
        ctx = {
            "function_name": version.name,
            "function_version": version.version,
            # Lambda reports the ARN as invoked: qualified only if the caller gave a qualifier.
            "invoked_function_arn": function_arn(version.name, qualifier),
            "memory_limit_in_mb": version.config.memory_mb,
            "log_group_name": f"/aws/lambda/{version.name}",
            "log_stream_name": f"{time.strftime('%Y/%m/%d', time.gmtime(now))}/[{version.version}]{version.revision}",
        }
        if len(self._contexts) >= MAX_CACHED_CONTEXTS:
            self._contexts.clear()  # versions come and go; a rebuild costs microseconds
        self._contexts[key] = (day, ctx)
        return ctx
