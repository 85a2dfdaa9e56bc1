"""WebAssembly functions over the real gRPC API: deploy the committed guests, invoke them, check
payloads, Lambda-style errors, reports and logs, exactly as for Python functions."""

from __future__ import annotations

import json
import os

import grpc
import pytest

from runner.service.proto import runner_api_pb2 as pb
from tests.conftest import guest
from tests.integration.conftest import error_type


def wasm(name: str) -> bytes:
    with open(guest("wasm", f"{name}.wasm"), "rb") as f:
        return f.read()


def deploy(client, name, module, handler="_start", **config):
    return client.deploy(name, wasm(module), runtime="wasm", handler=handler, **config)


def test_hello_command_with_report_and_logs(client):
    info = deploy(client, "hello", "hello")
    assert info.config.runtime == "wasm"
    resp = client.invoke("hello", b"{}", log_type=pb.LOG_TYPE_TAIL)
    assert json.loads(resp.payload) == {"message": "hello from wasm"}
    assert resp.function_error == ""
    assert resp.report.cold_start and resp.report.HasField("init_duration_ms")
    assert resp.report.memory_size_mb == 128
    assert resp.report.max_memory_used_mb == 1  # one 64 KiB page, rounded up
    tail = resp.log_result.decode()
    assert "hello: greeting sent" in tail and "REPORT RequestId: " + resp.request_id in tail
    assert not client.invoke("hello", b"{}").report.cold_start


def test_echo_command_returns_the_event(client):
    deploy(client, "echo", "echo")
    event = {"numbers": [1, 2, 3], "nested": {"ok": True}}
    assert json.loads(client.invoke("echo", json.dumps(event).encode()).payload) == event


def test_reactor_counter_keeps_state_between_warm_calls(client):
    deploy(client, "counter", "counter", handler="handle")
    first, second = client.invoke("counter", b"{}"), client.invoke("counter", b"{}")
    assert json.loads(first.payload) == {"count": 1} and json.loads(second.payload) == {"count": 2}
    assert first.report.cold_start and not second.report.cold_start


def test_heavy_init_reactor_starts_from_its_snapshot(client):
    deploy(client, "heavy", "heavy_init", handler="handle", memory_mb=1769)
    resp = client.invoke("heavy", b"{}", log_type=pb.LOG_TYPE_TAIL)
    body = json.loads(resp.payload)
    assert body["calls"] == 1 and body["checksum"] > 0
    assert resp.report.cold_start
    # init ran at deploy, not in this environment: its log line is not in the cold start's log
    assert "heavy_init: table ready" not in resp.log_result.decode()


def test_reactor_error_document_is_unhandled_with_its_type(client):
    deploy(client, "cpu", "cpu_bound", handler="handle")
    resp = client.invoke("cpu", b'{"none": true}')
    assert resp.function_error == "Unhandled"
    assert resp.error.error_type == "BadRequest"
    assert json.loads(client.invoke("cpu", b'{"n": 100}').payload)["n"] == 100


def test_trap_is_a_function_error_with_backtrace(client):
    deploy(client, "trap", "trap")
    resp = client.invoke("trap", b"{}", log_type=pb.LOG_TYPE_TAIL)
    assert resp.function_error == "Unhandled"
    doc = json.loads(resp.payload)
    assert doc["errorType"] == "Runtime.WasmTrap" and "unreachable" in doc["errorMessage"]
    assert doc["stackTrace"][0].startswith("inner_fails")
    assert "trap: about to fail" in resp.log_result.decode()


def test_infinite_loop_times_out_and_is_replaced(client):
    deploy(client, "loop", "infinite_loop", timeout_s=1)
    resp = client.invoke("loop", b"{}")
    assert resp.error.error_type == "Sandbox.Timedout"
    assert resp.error.error_message == "Task timed out after 1.00 seconds"
    assert client.invoke("loop", b"{}").report.cold_start  # a new environment


def test_memory_hog_is_out_of_memory(client):
    deploy(client, "hog", "memory_hog")
    resp = client.invoke("hog", b"{}")
    assert resp.error.error_type == "Runtime.OutOfMemory"
    assert "128 MB" in resp.error.error_message
    assert resp.report.max_memory_used_mb == 128


def test_host_files_are_out_of_reach(client):
    deploy(client, "peek", "read_host_file")
    resp = client.invoke("peek", b"{}", log_type=pb.LOG_TYPE_TAIL)
    assert resp.function_error == "Unhandled"
    assert resp.error.error_type == "Runtime.ExitError"
    assert "root:" not in resp.payload.decode() and "access denied" in resp.log_result.decode()


def test_guest_environment_is_the_configured_one(client):
    deploy(client, "env", "env_dump", environment={"STAGE": "prod"})
    lines = json.loads(client.invoke("env", b"{}").payload).splitlines()
    assert lines == ["function.wasm", "STAGE=prod"]


@pytest.mark.parametrize("module,fragment", [
    (b"\0asm\x01\x00\x00\x00garbage-after-a-valid-header", "not a valid WebAssembly module"),
    (wasm("unknown_import"), "env.host_secret"),
    (wasm("start_trap"), "start function"),
])
def test_bad_modules_fail_the_deploy(client, module, fragment):
    with pytest.raises(grpc.RpcError) as e:
        client.deploy("bad", module, runtime="wasm", handler="_start")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_type(e.value) == "InvalidCodePackageException"
    assert fragment in e.value.details()
    deploy(client, "fine", "hello")  # the server is unharmed
    assert json.loads(client.invoke("fine", b"{}").payload) == {"message": "hello from wasm"}


def test_minimum_memory_over_memory_mb_names_the_field(client):
    with pytest.raises(grpc.RpcError) as e:
        deploy(client, "big", "big_memory", memory_mb=128)
    assert "memory_mb" in e.value.details()
    deploy(client, "big", "big_memory", memory_mb=512)


def test_compiled_modules_are_cached_under_the_data_dir(server, client):
    runner, _ = server
    deploy(client, "hello", "hello")
    cache = os.path.join(runner.data_dir, "envs", "wasm-cache")
    assert any(n.endswith(".cwasm") for n in os.listdir(cache))
