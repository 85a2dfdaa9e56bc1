"""A kill -9 of `runner serve` while Event invocations stream in loses no accepted event.

The server runs as a real subprocess. Events go in over gRPC and HTTP alternately; a second
thread sends SIGKILL once some have been accepted, while the sender keeps going until the
server stops answering. A new server on the same data directory must then run every event
that was answered 202 at least once: the recorder guest writes one line per execution,
keyed by the request id the client was given.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection

import grpc
import pytest

from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.async_helpers import RECORDER, WAIT_S, records, wait_for
from tests.integration.conftest import Client

# The recorder guest writes into a host directory the test reads back.
pytestmark = pytest.mark.usefixtures("guests_see_host_files")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILL_AFTER = 40  # accepted events before the kill
MAX_SENDS = 2000  # the sender stops by itself at this many, should the kill never land


class Server:
    """`python -m runner serve` on loopback ports chosen by the OS."""

    def __init__(self, data_dir: str, log_path: str) -> None:
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "serve", "--data-dir", data_dir, "--port", "0",
             "--http-port", "0", "--retry-delay", "0.1", "--grace", "1"],
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


@pytest.fixture
def dirs(tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    return str(tmp_path / "data"), str(rec), str(tmp_path / "server.log")


def test_kill9_loses_no_accepted_event(dirs):
    data_dir, rec_dir, log_path = dirs
    first = Server(data_dir, log_path)
    accepted: list[str] = []
    client = Client(first.grpc_address)
    conn = HTTPConnection("127.0.0.1", first.http_port, timeout=10)
    try:
        client.deploy("rec", zip_directory(RECORDER), runtime="python", handler="app.handler",
                      environment={"RECORD_DIR": rec_dir})
        killed = threading.Event()

        def killer():
            while len(accepted) < KILL_AFTER and not killed.is_set():
                time.sleep(0.001)
            first.kill9()
            killed.set()

        t = threading.Thread(target=killer)
        t.start()
        try:
            for i in range(MAX_SENDS):
                payload = json.dumps({"n": i, "sleep": 0.02}).encode()
                try:
                    if i % 2:
                        resp = client.invoke("rec", payload, invocation_type=pb.EVENT)
                        assert resp.status_code == 202
                        accepted.append(resp.request_id)
                    else:
                        conn.request("POST", "/2015-03-31/functions/rec/invocations", payload,
                                     {"X-Amz-Invocation-Type": "Event"})
                        r = conn.getresponse()
                        r.read()
                        assert r.status == 202
                        accepted.append(r.headers["x-amzn-RequestId"])
                except (grpc.RpcError, OSError):
                    break  # the server is gone; this event was never acknowledged
        finally:
            killed.set()
            t.join()
    finally:
        conn.close()
        client.close()
        first.proc.wait()
        first.stop()
    assert first.proc.returncode == -signal.SIGKILL
    assert len(accepted) >= KILL_AFTER

    second = Server(data_dir, log_path)
    try:
        def all_ran():
            seen = {rid for rid, _ in records(rec_dir, "rec")}
            return not (set(accepted) - seen)

        wait_for(all_ran, f"all {len(accepted)} accepted events to run after the restart")
    finally:
        second.stop()
    seen = [rid for rid, _ in records(rec_dir, "rec")]
    missing = set(accepted) - set(seen)
    assert not missing, f"{len(missing)} accepted events never ran"
    assert second.proc.returncode == 0  # a clean SIGTERM shutdown
