"""A small data directory: a chatty function cannot fill it, and the server keeps working.

Before the global log budget (storage/logs.py), one function printing 1 MiB per call filled a
20 MB data directory in 22 calls (2 x 16 MiB of log per function), after which even
DeleteFunction failed. The data directory here is a 20 MB tmpfs mounted for the test (root
only; the test says why it skips otherwise).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile

import pytest

from runner.service.proto import runner_api_pb2 as pb
from tests.integration.conftest import Client
from tests.reliability.conftest import Server

CHATTY = b"import os\ndef handler(event, context):\n    os.write(1, b'y' * (1 << 20))\n    return 'ok'\n"


@pytest.fixture
def small_data_dir(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 20 MB tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield str(mount / "data")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_chatty_function_cannot_fill_a_small_data_directory(small_data_dir, tmp_path):
    server = Server(small_data_dir, str(tmp_path / "server.log"))
    client = Client(server.grpc_address)
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", CHATTY)
        client.deploy("chatty", buf.getvalue(), runtime="python", handler="app.handler")
        for _ in range(60):  # 60 MiB printed: three times the whole file system
            resp = client.invoke("chatty", b"{}")
            assert resp.payload == b'"ok"' and not resp.function_error
        usage = shutil.disk_usage(os.path.dirname(small_data_dir))
        assert usage.free > 5 * 1024 * 1024, usage  # the logs stayed within their share
        assert len(list(client.invoker.GetLogs(pb.GetLogsRequest(name="chatty", tail_lines=5)))) == 5
        client.functions.DeleteFunction(pb.DeleteFunctionRequest(name="chatty"))
    finally:
        client.close()
        server.stop()
    assert server.proc.returncode == 0


def test_a_function_can_be_deleted_on_a_full_disk(small_data_dir, tmp_path):
    server = Server(small_data_dir, str(tmp_path / "server.log"))
    client = Client(server.grpc_address)
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", b"def handler(event, context):\n    return 'ok'\n")
        for name in ("keep", "drop"):
            client.deploy(name, buf.getvalue(), runtime="python", handler="app.handler")
            client.invoke(name, b"{}")
        # Fill what is left of the file system, as a runaway writer would.
        filler = os.path.join(os.path.dirname(small_data_dir), "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(bytes(1 << 20))
                    f.flush()
            except OSError:
                pass
        assert shutil.disk_usage(filler).free < 1 << 20
        # Reads need no space; the delete runs on the reserve the server kept for it.
        names = [f.name for f in client.functions.ListFunctions(pb.ListFunctionsRequest()).functions]
        assert sorted(names) == ["drop", "keep"]
        client.functions.DeleteFunction(pb.DeleteFunctionRequest(name="drop"))
        names = [f.name for f in client.functions.ListFunctions(pb.ListFunctionsRequest()).functions]
        assert names == ["keep"]
        assert client.invoke("keep", b"{}").payload == b'"ok"'  # warm: needs no new space
    finally:
        client.close()
        server.stop()
