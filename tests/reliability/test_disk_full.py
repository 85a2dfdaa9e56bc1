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
