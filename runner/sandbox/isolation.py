"""File-system, process and network isolation for subprocess environments.

`wrap(argv, version, tmp_dir)` returns the command line that starts `argv` inside the
environment's isolation. This first cut isolates nothing beyond a private scratch directory
(TMPDIR/HOME) and a scrubbed environment; namespaces arrive with the isolation work.
"""

from __future__ import annotations

from runner.model import FunctionVersion


def wrap(argv: list[str], version: FunctionVersion, tmp_dir: str) -> list[str]:
    return list(argv)
