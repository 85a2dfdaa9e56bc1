"""Kernel samepage merging for guest memory (issue 24, decision 072), opt-in with `RUNNER_KSM=on`.

Environments forked from one Python zygote hold many identical anonymous pages that were copied
on write (reference-count updates on shared objects, the allocator's bookkeeping). With KSM the
kernel's ksmd thread finds such pages and maps one read-only copy into every process again.

`prctl(PR_SET_MEMORY_MERGE, 1)` (Linux >= 6.4) marks all of a process's anonymous memory
mergeable. The mark belongs to the address space: fork() copies it to the child, and since
Linux 6.7 it also survives execve(). So the zygote sets it on itself before its init phase
(guest/python_zygote.py, told by `GUEST_FLAG` in its environment) and every environment it
forks is mergeable from its first instruction, with no code between fork and exec in the
multi-threaded server.

Merging itself runs only when the host's /sys/kernel/mm/ksm/run is 1, a host-wide setting
(it also merges other processes that asked for it). The server never changes it; it warns at
start-up (`host_problem()`) when the setting has no effect.
"""

from __future__ import annotations

import ctypes
import os

# The environment variable that asks a guest zygote to mark itself mergeable ("1"); popped by
# the guest before its init phase, so the function never sees it.
GUEST_FLAG = "_RUNNER_KSM"
PR_SET_MEMORY_MERGE = 67  # include/uapi/linux/prctl.h
PR_GET_MEMORY_MERGE = 68
KSM_DIR = "/sys/kernel/mm/ksm"


def host_problem(ksm_dir: str | None = None) -> str | None:
    """Why RUNNER_KSM=on would merge nothing on this host, or None when it will. `ksm_dir`:
    the sysfs directory (KSM_DIR, read at the call so that tests can point it elsewhere)."""
    ksm_dir = ksm_dir or KSM_DIR
    try:
        with open(os.path.join(ksm_dir, "run")) as f:
            run = f.read().strip()
    except OSError:
        return (f"this kernel has no KSM ({ksm_dir}/run is missing; it needs CONFIG_KSM); "
                "unset RUNNER_KSM or use a kernel built with KSM")
    if run != "1":
        return (f"the host's KSM is off ({ksm_dir}/run is {run}): environments are marked "
                f"mergeable but nothing merges until an administrator runs "
                f"`echo 1 > {ksm_dir}/run`; or unset RUNNER_KSM")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) < 0:
        return (f"this kernel lacks PR_SET_MEMORY_MERGE (Linux >= 6.4): "
                f"{os.strerror(ctypes.get_errno())}; unset RUNNER_KSM or upgrade the kernel")
    return None


# Linux 6.7 made the mark survive execve (before, exec started a fresh, unmarked address space).
EXEC_INHERITS_SINCE = (6, 7)


def _kernel_version(release: str | None = None) -> tuple[int, int]:
    release = release if release is not None else os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def mark_launcher(what: str, release: str | None = None) -> str | None:
    """Mark this process's address space mergeable so that the processes it launches inherit
    the mark through fork and (Linux >= 6.7) execve: the way to cover a runtime that cannot
    call prctl itself and has no zygote (Node.js, decision 080). None when marked; otherwise
    why not, which the caller logs.

    Why marking the launching process is safe: the mark only lets ksmd compare this process's
    anonymous pages with others'; it changes no page and no permission. Pages this process
    keeps writing (the server's heap) never stay unchanged for the two scans a merge needs;
    one that does merge is copied again on its next write (a page fault, not a correctness
    issue). Idempotent: the prctl sets a flag on the mm."""
    if _kernel_version(release) < EXEC_INHERITS_SINCE:
        return (f"{what} environments are not marked: this kernel ({release or os.uname().release}) "
                f"resets the mark at execve; Linux >= 6.7 keeps it")
    return set_mergeable(True)


def set_mergeable(on: bool) -> str | None:
    """prctl(PR_SET_MEMORY_MERGE, on) on this process. None on success, else the reason.
    Turning it off also unmerges this process's merged pages (the kernel copies them back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MEMORY_MERGE, 1 if on else 0, 0, 0, 0) < 0:
        return (f"prctl(PR_SET_MEMORY_MERGE) failed: {os.strerror(ctypes.get_errno())} "
                "(Linux >= 6.4 needed)")
    return None


def is_marked() -> bool:
    """Whether this process's address space is marked mergeable."""
    return ctypes.CDLL(None, use_errno=True).prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) == 1
