"""`runner serve` runs the scheduler: a slot fires through the real process, a restart does not
fire it again, and an at() slot that fell due while the server was down fires once at
start-up (within its maximum event age)."""

import json
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from runner.cli.main import main
from tests.async_helpers import RECORDER, records, wait_for

pytestmark = pytest.mark.usefixtures("guests_see_host_files")


def start(data_dir):
    proc = subprocess.Popen([sys.executable, "-m", "runner", "serve", "--data-dir", data_dir,
                             "--port", "0", "--http-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if m := re.search(r"^listening on (\S+:\d+)", line):
            address = m.group(1)
        if line.startswith("http listening"):
            return proc, address
        if not line:
            break
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(lines))


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    proc.stdout.close()


def test_scheduler_in_serve_across_a_restart(tmp_path, capsys):
    data, rec = str(tmp_path / "data"), tmp_path / "records"
    rec.mkdir()
    proc, addr = start(data)
    try:
        assert main(["deploy", "rec", "--runtime", "python", "--handler", "app.handler",
                     "--env", f"RECORD_DIR={rec}", RECORDER, "--address", addr]) == 0
        assert main(["schedule", "add", "hourly", "--function", "rec",
                     "--expression", "rate(1 hour)", "--address", addr]) == 0
        wait_for(lambda: records(str(rec), "rec"), "the rate's first slot")
        soon = datetime.now(timezone.utc) + timedelta(seconds=4)
        assert main(["schedule", "add", "once", "--function", "rec", "--expression",
                     f"at({soon.strftime('%Y-%m-%dT%H:%M:%S')})", "--address", addr]) == 0
    finally:
        stop(proc)  # down before the at() slot
    capsys.readouterr()
    while datetime.now(timezone.utc) < soon + timedelta(seconds=1):
        time.sleep(0.2)
    proc, addr = start(data)
    try:
        got = wait_for(lambda: len(records(str(rec), "rec")) >= 2 and records(str(rec), "rec"),
                       "the missed at() slot at start-up")
        time.sleep(2)  # two more scheduler ticks: nothing fires twice
        got = records(str(rec), "rec")
        kinds = sorted(e["resources"][0].rsplit("/", 1)[1] for _, e in got)
        assert kinds == ["hourly", "once"], kinds
        assert main(["schedule", "get", "once", "--address", addr]) == 0
        assert "next_slot" not in json.loads(capsys.readouterr().out)  # nothing left to fire
    finally:
        stop(proc)
