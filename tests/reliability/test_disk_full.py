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
import urllib.error
import urllib.request
import zipfile

import grpc
import pytest

from runner.service.proto import runner_api_pb2 as pb
from tests.integration.conftest import Client, error_type
from tests.reliability.conftest import Server
from tests.security.test_wasm_hostile import DISK_FILLER, WASI_ENOSPC

CHATTY = b"import os\ndef handler(event, context):\n    os.write(1, b'y' * (1 << 20))\n    return 'ok'\n"


def _fill(path: str) -> None:
    """Fill what is left of the file system holding `path`, as a runaway writer would."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(bytes(1 << 20))
                f.flush()
        except OSError:
            pass
    assert shutil.disk_usage(path).free < 1 << 20


def _python_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", b"def handler(event, context):\n    return 'ok'\n")
    return buf.getvalue()


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
        _fill(os.path.join(os.path.dirname(small_data_dir), "filler"))
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


def test_a_full_disk_is_storage_full_over_grpc_and_http_never_internal(small_data_dir, tmp_path):
    # Before: StorageFull was an InternalError (gRPC INTERNAL, HTTP 500), so clients could not
    # tell a full disk from a bug. Now: RESOURCE_EXHAUSTED / 507, type StorageFullException.
    server = Server(small_data_dir, str(tmp_path / "server.log"))
    client = Client(server.grpc_address)
    try:
        client.deploy("keep", _python_zip(), runtime="python", handler="app.handler")
        _fill(os.path.join(os.path.dirname(small_data_dir), "filler"))
        with pytest.raises(grpc.RpcError) as info:  # code, registry and WAL need space
            client.deploy("new", _python_zip(), runtime="python", handler="app.handler")
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
        assert error_type(info.value) == "StorageFullException"
        assert "out of space" in info.value.details()
        # An event invocation must be written to events.db before its 202: it cannot be.
        req = urllib.request.Request(
            f"http://127.0.0.1:{server.http_port}/2015-03-31/functions/keep/invocations",
            data=b"{}", method="POST", headers={"X-Amz-Invocation-Type": "Event"})
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(req, timeout=30)
        http.value.close()
        assert http.value.code == 507
        assert http.value.headers["x-amzn-ErrorType"] == "StorageFullException"
    finally:
        client.close()
        server.stop()


def test_a_wasm_guest_cannot_fill_the_data_directory_through_tmp(small_data_dir, tmp_path):
    # Before: a wasm guest with ephemeral_storage_mb=10 wrote 64 MB to /tmp, filling the data
    # directory (its /tmp was a plain directory under envs/). Now it is a 10 MiB tmpfs.
    import wasmtime

    server = Server(small_data_dir, str(tmp_path / "server.log"))
    client = Client(server.grpc_address)
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("function.wasm", wasmtime.wat2wasm(DISK_FILLER))
        client.deploy("filler", buf.getvalue(), runtime="wasm", handler="_start",
                      ephemeral_storage_mb=10, concurrency=2)
        free_before = shutil.disk_usage(small_data_dir).free
        resp = client.invoke("filler", b"{}")
        assert not resp.function_error, resp.payload
        err, written = (int(x) for x in resp.payload.decode().strip('"').split())
        assert err == WASI_ENOSPC and written <= 10 * 1024 * 1024
        assert shutil.disk_usage(small_data_dir).free > free_before - 2 * 1024 * 1024
        client.functions.DeleteFunction(pb.DeleteFunctionRequest(name="filler"))
    finally:
        client.close()
        server.stop()
