"""Reliability: real `runner serve` processes killed, doubled, loaded and starved.

Each test drives servers as subprocesses on loopback ports the OS picks, with data in a
temporary directory. `make test` runs them at the sizes below; `make test-long` (the
`--long` option) runs the sizes the hardening issue measured.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from tests.async_helpers import WAIT_S

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILL_AFTER = 40  # accepted events before the kill
MAX_SENDS = 2000  # the sender stops by itself at this many, should the kill never land


class Server:
    """`python -m runner serve` on loopback ports chosen by the OS."""

    def __init__(self, data_dir: str, log_path: str, grace_s: float = 1.0) -> None:
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "serve", "--data-dir", data_dir, "--port", "0",
             "--http-port", "0", "--retry-delay", "0.1", "--grace", str(grace_s)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log)
        self.grpc_address = self.http_port = None
        deadline = time.monotonic() + WAIT_S
        while self.grpc_address is None or self.http_port is None:
            line = self.proc.stdout.readline().decode()
            if not line or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server did not start; see {log_path}")
            if m := re.match(r"^listening on (\S+:\d+)", line):
                self.grpc_address = m.group(1)
            elif m := re.match(r"^http listening on \S+:(\d+)", line):
                self.http_port = int(m.group(1))

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


# The cluster tests' PostgreSQL (tests/state_fixtures.py): one server per session.
from tests.state_fixtures import pg_server  # noqa: E402,F401
