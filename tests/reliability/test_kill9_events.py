"""A kill -9 of `runner serve` while Event invocations stream in loses no accepted event.

The server runs as a real subprocess. Events go in over gRPC and HTTP alternately; a second
thread sends SIGKILL once some have been accepted, while the sender keeps going until the
server stops answering. A new server on the same data directory must then run every event
that was answered 202 at least once: the recorder guest writes one line per execution,
keyed by the request id the client was given.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections import Counter
from http.client import HTTPConnection

import grpc
import pytest

from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.async_helpers import RECORDER, records, wait_for
from tests.integration.conftest import Client
from tests.reliability.conftest import KILL_AFTER, MAX_SENDS, Server

# The recorder guest writes into a host directory the test reads back.
pytestmark = pytest.mark.usefixtures("guests_see_host_files")

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
    reader = Client(second.grpc_address)

    def short_runs() -> dict[str, tuple[int, int]]:
        """Runs (records the guest wrote) without their START line in the function's log."""
        log = "\n".join(line.line for line in reader.invoker.GetLogs(
            pb.GetLogsRequest(name="rec")))
        runs = Counter(rid for rid, _ in records(rec_dir, "rec"))
        starts = Counter(m.group(1) for m in
                         re.finditer(r"^START RequestId: (\S+)", log, re.MULTILINE))
        return {rid: (n, starts[rid]) for rid, n in runs.items() if starts[rid] < n}

    try:
        def all_ran():
            seen = {rid for rid, _ in records(rec_dir, "rec")}
            return not (set(accepted) - seen)

        wait_for(all_ran, f"all {len(accepted)} accepted events to run after the restart")
        # Both runs of an event that ran twice show in the function's log: the attempt the
        # kill cut short is named there (its own output died with the server), then the rerun.
        # The guest writes its record during the invocation and the Runner writes the block
        # just after it returns, so the last blocks may still be on their way: wait for them.
        try:
            wait_for(lambda: not short_runs(), "every run's START line in the function's log")
        except AssertionError:
            pass  # the assertion below names the runs that never showed
        short = short_runs()
    finally:
        reader.close()
        second.stop()
    seen = [rid for rid, _ in records(rec_dir, "rec")]
    missing = set(accepted) - set(seen)
    assert not missing, f"{len(missing)} accepted events never ran"
    assert not short, f"runs missing from the log (runs, START lines): {short}"
    assert second.proc.returncode == 0  # a clean SIGTERM shutdown
