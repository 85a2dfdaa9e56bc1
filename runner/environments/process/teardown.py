"""The slow half of destroying an environment, off the invocation's path.

Destroying a subprocess environment was one inline step: SIGKILL its process group, wait for
the reap (for a forked environment: until its zygote reports the exit), remove its cgroups
(which waits for their processes to be gone, and on cgroup v1 freezes the group first), and
remove its scratch directory. A timed-out or crashed invocation ran all of it before its
result was returned, so a stopped or CPU-throttled zygote held a 1 s timeout for up to
2 x KILL_GRACE_S, and a busy host added the cgroup removal's waits on top (issue 17, item 7:
1 s timeouts reported after up to 14 s).

Now `ProcessEnvironment.destroy()` does the part that must be done before anyone may count
the environment as gone, inline: the SIGKILL (queued on every process of the group, which so
runs no further guest instruction), closing the host's end of its channel and reading its
peak memory for the report. `submit()` runs the rest here, on a few daemon threads: the
reap, the cgroup removal (which also kills what left the process group) and the rmtree.

Invariants:
* Nothing submitted touches an object the caller keeps: each job owns the process handle,
  the limits handle and the directory it was given (destroy() took them from the environment).
* Jobs never raise into anyone (a failure is logged) and each one is bounded (the waits inside
  it are: KILL_GRACE_S twice, the cgroup removal's timeout), so `drain()` ends.
* `drain()` lets a backend's close() (and tests) wait until every teardown submitted before it
  has finished, so a closed runner leaves no cgroup behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

WORKERS = 4  # teardowns mostly wait (reaps, rmdir retries); a few threads keep up with bursts

_lock = threading.Lock()
_idle = threading.Condition(_lock)
_pending = 0
_executor: ThreadPoolExecutor | None = None


def submit(job: Callable[[], None], what: str) -> None:
    """Run `job` (the rest of tearing down `what`) on a teardown thread."""
    global _pending, _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="env-teardown")
        _pending += 1
        executor = _executor
    try:
        executor.submit(_run, job, what)
    except RuntimeError:  # interpreter shutdown: no new threads; finish it here instead
        _run(job, what)


def _run(job: Callable[[], None], what: str) -> None:
    global _pending
    try:
        job()
    except Exception:
        log.exception("tearing down %s failed", what)
    finally:
        with _lock:
            _pending -= 1
            if _pending == 0:
                _idle.notify_all()


def pending() -> int:
    with _lock:
        return _pending


def drain(timeout: float) -> bool:
    """Wait until no teardown is pending; False if some still were after `timeout` seconds."""
    with _idle:
        return _idle.wait_for(lambda: _pending == 0, timeout)
