"""Node.js functions through the real gRPC API: deploy the guests/node examples, invoke, read
results, errors, logs and reports (the same path as Python functions)."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import grpc
import pytest

from runner.environments.node.snapshot import OPT_IN_VAR
from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.conftest import guest


def code(name: str) -> bytes:
    return zip_directory(guest("node", name))


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return buf.getvalue()


def deploy(client, name, data, **config):
    config.setdefault("runtime", "nodejs20.x")
    config.setdefault("handler", "index.handler")
    return client.deploy(name, data, **config)


def invoke(client, name, event=None, **kw):
    return client.invoke(name, json.dumps(event).encode() if event is not None else b"", **kw)


def test_hello_cold_then_warm_with_framed_logs(client):
    info = deploy(client, "n-hello", code("hello"))
    assert info.config.runtime == "nodejs"
    first = invoke(client, "n-hello", {"name": "grpc"}, log_type=pb.LOG_TYPE_TAIL)
    assert first.function_error == ""
    assert json.loads(first.payload) == {"message": "hello grpc"}
    assert first.report.cold_start and first.report.HasField("init_duration_ms")
    log = first.log_result.decode()
    assert f"START RequestId: {first.request_id}" in log
    assert re.search(rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z\t{first.request_id}\tINFO\thello from n-hello", log)
    assert f"REPORT RequestId: {first.request_id}" in log
    second = invoke(client, "n-hello", {})
    assert not second.report.cold_start
    assert json.loads(second.payload) == {"message": "hello world"}


@pytest.mark.parametrize("name,event,expected", [
    ("callback", {"n": 5}, {"style": "callback", "doubled": 10}),
    ("async", {"sleepMs": 2}, {"style": "async", "slept": 2}),
    ("esm_pkg", {"x": 9}, {"style": "esm-package", "value": 10}),
    ("deps", {"name": "zip"}, {"greeting": "greetings, zip"}),
])
def test_handler_styles(client, name, event, expected):
    deploy(client, f"n-{name.replace('_', '-')}", code(name))
    out = invoke(client, f"n-{name.replace('_', '-')}", event)
    assert out.function_error == "", out.payload
    assert json.loads(out.payload) == expected


def test_esm_mjs_and_context(client):
    deploy(client, "n-esm", code("esm"))
    assert json.loads(invoke(client, "n-esm", {}).payload)["style"] == "esm"
    deploy(client, "n-echo", code("echo"), memory_mb=512)
    body = json.loads(invoke(client, "n-echo", {"a": 1}, qualifier="$LATEST").payload)
    ctx = body["context"]
    assert ctx["functionName"] == "n-echo" and ctx["memoryLimitInMB"] == "512"
    assert ctx["invokedFunctionArn"].endswith(":function:n-echo:$LATEST")
    assert 0 < ctx["remainingMs"] <= 3000


def test_thrown_error_document(client):
    deploy(client, "n-throws", code("throws"))
    out = invoke(client, "n-throws", {"k": 1}, log_type=pb.LOG_TYPE_TAIL)
    assert out.function_error == "Unhandled"
    assert out.error.error_type == "TypeError"
    assert out.error.error_message == 'bad input: {"k":1}'
    assert out.error.stack_trace[0] == 'TypeError: bad input: {"k":1}'
    doc = json.loads(out.payload)
    assert doc["errorType"] == "TypeError" and isinstance(doc["stackTrace"], list)
    assert b"\tERROR\tInvoke Error \t" in out.log_result


@pytest.mark.parametrize("files,handler,etype", [
    ({"index.js": "exports.handler = async ( => 1;"}, "index.handler", "Runtime.UserCodeSyntaxError"),
    ({"index.js": "require('not-installed');"}, "index.handler", "Runtime.ImportModuleError"),
    ({"index.js": "exports.other = async () => 1;"}, "index.handler", "Runtime.HandlerNotFound"),
])
def test_init_errors_reach_the_caller(client, files, handler, etype):
    deploy(client, "n-bad", zipped(files), handler=handler)
    out = invoke(client, "n-bad", {})
    assert out.function_error == "Unhandled"
    assert out.error.error_type == etype


def test_a_missing_handler_file_fails_at_invoke(client):
    # Lambda accepts the deploy and reports at invoke (issue 20); the deploy logs a warning.
    deploy(client, "n-missing", zipped({"app.js": "exports.handler = 1;"}))
    out = invoke(client, "n-missing", {})
    assert out.function_error == "Unhandled"
    assert out.error.error_type == "Runtime.ImportModuleError"


def test_timeout_replaces_the_environment(client):
    deploy(client, "n-never", code("never_settles"), timeout_s=1)
    t0 = time.monotonic()
    out = invoke(client, "n-never", {})
    assert time.monotonic() - t0 < 6
    assert out.error.error_type == "Sandbox.Timedout"
    assert out.error.error_message == "Task timed out after 1.00 seconds"
    again = invoke(client, "n-never", {})
    assert again.report.cold_start  # the timed-out environment was not reused
    assert again.error.error_type == "Sandbox.Timedout"


def test_heap_blow_up_is_out_of_memory_and_replaced(client, server):
    runner, _ = server
    deploy(client, "n-hog", code("heap_hog"), memory_mb=128, timeout_s=20)
    out = invoke(client, "n-hog", {})
    assert out.function_error == "Unhandled"
    assert out.error.error_type == "Runtime.OutOfMemory"
    assert "out of memory (limit 128 MB)" in out.error.error_message
    again = invoke(client, "n-hog", {})
    assert again.report.cold_start and again.error.error_type == "Runtime.OutOfMemory"
    # The replacement cold starts feed the pre-start pool's demand estimate.
    version = runner.registry.resolve("n-hog", None)
    stats = runner.pool.prestart.stats()[version.key]
    assert stats["taken"] + stats["missed"] == 2


def test_cold_start_after_replacement_uses_a_prestarted_process(client, server):
    runner, _ = server
    deploy(client, "n-spare", code("never_settles"), timeout_s=1)
    version = runner.registry.resolve("n-spare", None)
    prestart = runner.pool.prestart

    def spare_ready():
        end = time.monotonic() + 10
        while prestart.stats()[version.key]["spares"] < 1 and time.monotonic() < end:
            time.sleep(0.02)
        return prestart.stats()[version.key]["spares"]

    assert spare_ready() == 1  # the deploy pre-started one
    first = invoke(client, "n-spare", {})  # cold: takes it; then killed by the timeout
    assert first.report.cold_start and prestart.stats()[version.key]["taken"] == 1
    assert spare_ready() == 1  # demand seen: refilled
    second = invoke(client, "n-spare", {})
    assert second.report.cold_start and prestart.stats()[version.key]["taken"] == 2


def test_concurrent_invocations(client, server):
    from concurrent.futures import ThreadPoolExecutor

    deploy(client, "n-conc", code("async"), concurrency=4)

    def one(i):
        try:
            return json.loads(invoke(client, "n-conc", {"sleepMs": 20}).payload)
        except grpc.RpcError as exc:  # past the concurrency limit: throttled, never wrong
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return None

    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(one, range(40)))
    served = [r for r in results if r is not None]
    assert served and all(r == {"style": "async", "slept": 20} for r in served)
    runner, _ = server
    stats = runner.pool.stats()["versions"]
    version = runner.registry.resolve("n-conc", None)
    assert stats[version.key]["busy"] == 0 and stats[version.key]["idle"] <= 4


def test_heavy_init_reports_its_init_and_opt_in_snapshot(client, server):
    deploy(client, "n-heavy", code("heavy_init"))
    plain = invoke(client, "n-heavy", {"prefix": "ab"})
    body = json.loads(plain.payload)
    assert body["entries"] == 18278 and body["count"] > 0
    # Date.now() counts whole milliseconds, so the guest's own measure of its init can read up to
    # 1 ms more than the host's fractional one for the same span.
    assert plain.report.cold_start and plain.report.init_duration_ms >= body["initMs"] - 1
    # The same code with the snapshot opt-in: init ran at deploy, the cold start only loads it.
    deploy(client, "n-heavy-snap", code("heavy_init"), environment={OPT_IN_VAR: "1"})
    snap = invoke(client, "n-heavy-snap", {"prefix": "ab"})
    assert json.loads(snap.payload)["count"] == body["count"]
    assert snap.report.cold_start and snap.report.init_duration_ms < body["initMs"]
    runner, _ = server
    version = runner.registry.resolve("n-heavy-snap", None)
    assert runner.pool.backend(version).runtime_impl.snapshots.blob_for(version) is not None
