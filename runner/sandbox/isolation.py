"""Isolation of a guest process beyond its own process group: the hook process.py calls.

`wrap(argv, version, tmp_dir)` returns the command line that starts a runtime inside whatever
isolation this host provides. This module is the baseline every host has: no namespaces, so the
command runs as given (the guest still gets its own session, a scrubbed environment and the
limits of limits.py). Namespaces (mount, pid, net, ipc, uts) are layered in here by the
isolation work, without any change to the runtimes that call it.
"""

from __future__ import annotations

from runner.model import FunctionVersion


def wrap(argv: list[str], version: FunctionVersion, tmp_dir: str) -> list[str]:
    """The argv to spawn for `version`; here the runtime's own argv, unchanged."""
    return list(argv)
