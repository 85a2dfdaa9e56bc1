"""Smoke test of bench/metrics_bench.py: it runs end to end with a tiny sample and writes the
documented JSON. No timing is asserted (a shared machine); the figures come from `make bench`
style runs, recorded in docs/observability.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_metrics_bench_runs(tmp_path):
    out = tmp_path / "metrics.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "metrics_bench.py"),
                           "--n", "50", "--json", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    for path in ("gRPC", "embedded"):
        fig = doc["paths"][path]
        assert fig["verdict"] in ("PASS", "FAIL")
        assert fig["p50_ratio"] > 0 and fig["noise_ratio"] > 0
        assert fig["metrics on"]["p50_ms"] > 0 and fig["metrics off"]["p99_ms"] > 0
    assert "A/A noise floor" in proc.stdout
