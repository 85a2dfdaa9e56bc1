"""Every benchmark script under bench/ imports: they are run by hand and in `make bench`, not by
the suite, so a runner symbol renamed or moved (as `_innermost` once was, leaving
bench/density_bench.py broken) would otherwise go unnoticed until someone measures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_bench_script_imports():
    modules = sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem != "__init__")
    assert "density_bench" in modules and "run" in modules
    # One fresh interpreter for all of them: importing runs each module's top level only
    # (every script keeps its work under `if __name__ == "__main__"`).
    code = "import importlib\n" + "".join(f"importlib.import_module('bench.{m}')\n" for m in modules)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
