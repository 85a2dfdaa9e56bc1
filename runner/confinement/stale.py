"""Leftovers of runner processes that died without cleaning up (SIGKILL, a crash, a power cut).

Whatever a runner process creates outside its own work directory and must not outlive it (its
environments' cgroups, the wasm runtime's CPU lanes, its RAM-backed stdio directories) is named
`<prefix><pid>-<rest>`, with the creating process's pid. At start-up each owner lists such
names and removes those whose pid no longer runs; `dead_owner_entries` is that listing, the
removal stays with the owner because each kind of leftover is removed differently (a cgroup
must be emptied and rmdir'd bottom up, a directory of files is rmtree'd).

A pid that was reused by an unrelated process keeps its leftovers alive until that process
exits: harmless (they cost a directory entry) and the only safe choice, since the name cannot
tell a reused pid from a live runner.
"""

from __future__ import annotations

import os

import psutil


def dead_owner_entries(directory: str, prefix: str) -> list[str]:
    """Names in `directory` of the form `<prefix><pid>[-<rest>]` whose pid is not running,
    sorted. Never this process's own entries; a missing or unreadable directory has none."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    own = os.getpid()
    out = []
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == own or psutil.pid_exists(int(pid)):
            continue
        out.append(name)
    return sorted(out)
