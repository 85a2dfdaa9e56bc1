"""Two servers on one data directory: the second exits at once, naming the first.

Before the data directory was locked, a second server started without complaint and both ran
the durable event queue: 85 of 100 events ran twice.
"""

from __future__ import annotations

import subprocess
import sys
import time

from tests.reliability.conftest import ROOT, Server


def test_a_second_server_on_the_same_data_directory_exits_at_once(tmp_path):
    data_dir = str(tmp_path / "data")
    first = Server(data_dir, str(tmp_path / "first.log"))
    try:
        t0 = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "runner", "serve", "--data-dir", data_dir, "--port", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        assert second.returncode == 2, second.stderr
        assert f"data directory {data_dir} is in use by another runner (pid {first.proc.pid})" \
            in second.stderr
        assert "listening on" not in second.stdout
        assert took < 30  # refused at start-up, not after serving (generous: a loaded CI host)
        assert first.proc.poll() is None  # the first one is untouched
    finally:
        first.stop()
    # Once the first is gone, the directory is free again.
    third = Server(data_dir, str(tmp_path / "third.log"))
    third.stop()
    assert third.proc.returncode == 0
