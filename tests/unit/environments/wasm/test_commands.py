"""WASI command guests driven through WasmBackend/WasmEnvironment directly."""

from __future__ import annotations

import json
import os

import pytest

from runner.environments.base import EnvState
from runner.errors import FunctionCrashed, FunctionOutOfMemory, FunctionTimeout, HandlerError
from runner.model import MAX_PAYLOAD_BYTES
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-commands"))
    yield b
    b.close()


@pytest.fixture
def code(tmp_path):
    return tmp_path


def test_hello_answers_json_and_logs_stderr(backend, code):
    env = started(backend, deploy(code, "hello"))
    out = invoke(env)
    assert out.error is None
    assert json.loads(out.payload) == {"message": "hello from wasm"}
    assert out.logs == b"hello: greeting sent\n"
    assert out.reusable and env.state is EnvState.READY
    assert out.max_memory_bytes == 65536  # one page: linear memory is what the report counts
    env.destroy()


def test_echo_returns_the_event_and_each_invocation_is_fresh(backend, code):
    env = started(backend, deploy(code, "echo"))
    for event in ({"a": [1, 2, {"b": None}]}, {"second": "call"}):
        out = invoke(env, json.dumps(event).encode())
        assert json.loads(out.payload) == event
    env.destroy()


def test_echo_streams_a_large_event(backend, code):
    env = started(backend, deploy(code, "echo"))
    event = {"blob": "x" * (2 * 1024 * 1024)}
    out = invoke(env, json.dumps(event).encode())
    assert json.loads(out.payload) == event
    env.destroy()


def test_response_over_6mb_is_a_function_error_not_a_crash(backend, code):
    env = started(backend, deploy(code, "echo"))
    out = invoke(env, json.dumps("y" * (MAX_PAYLOAD_BYTES + 10)).encode())
    assert out.payload is None
    assert out.error.error_type == "Function.ResponseSizeTooLarge"
    assert out.reusable
    assert json.loads(invoke(env, b"[1]").payload) == [1]  # the environment still works
    env.destroy()


def test_non_json_stdout_is_wrapped_as_a_json_string(backend, code):
    # env_dump prints plain lines: argv, then the environment.
    env = started(backend, deploy(code, "env_dump"))
    out = invoke(env)
    text = json.loads(out.payload)
    assert isinstance(text, str) and text.startswith("function.wasm\n")
    env.destroy()


def test_guest_sees_only_configured_environment_and_fixed_args(backend, code):
    env = started(backend, deploy(code, "env_dump", environment={"GREETING": "hi", "MODE": "test"}))
    lines = json.loads(invoke(env).payload).splitlines()
    assert lines == ["function.wasm", "GREETING=hi", "MODE=test"]
    env.destroy()


def test_reading_a_host_file_fails(backend, code):
    env = started(backend, deploy(code, "read_host_file"))
    out = invoke(env)
    assert isinstance(out.error, FunctionCrashed)
    assert "exit status 1" in out.error.message
    assert out.logs == b"read_host_file: access denied\n"
    assert out.payload is None
    env.destroy()


def test_trap_reports_code_and_backtrace(backend, code):
    env = started(backend, deploy(code, "trap"))
    out = invoke(env)
    assert isinstance(out.error, HandlerError)
    assert out.error.error_type == "Runtime.WasmTrap"
    assert "unreachable" in out.error.message
    assert out.error.stack_trace[0].startswith("inner_fails ")
    assert out.error.stack_trace[1].startswith("outer ")
    assert out.logs == b"trap: about to fail\n"
    # A command gets a fresh instance per invocation, so a trap does not retire the environment.
    assert out.reusable
    assert isinstance(invoke(env).error, HandlerError)
    env.destroy()


def test_memory_hog_is_out_of_memory_at_the_configured_cap(backend, code):
    env = started(backend, deploy(code, "memory_hog", memory_mb=128))
    out = invoke(env)
    assert isinstance(out.error, FunctionOutOfMemory)
    assert "limit 128 MB" in out.error.message
    assert 120 * 2**20 <= out.max_memory_bytes <= 128 * 2**20
    assert not out.reusable and env.state is EnvState.DEAD
    # The server is unharmed: the same backend keeps serving.
    env2 = started(backend, deploy(code, "hello"))
    assert invoke(env2).error is None
    env2.destroy()


def test_memory_cap_follows_memory_mb(backend, code):
    env = started(backend, deploy(code, "memory_hog", memory_mb=256))
    out = invoke(env)
    assert isinstance(out.error, FunctionOutOfMemory)
    assert 240 * 2**20 <= out.max_memory_bytes <= 256 * 2**20
    env.destroy()


def test_infinite_loop_times_out_with_lambdas_message(backend, code):
    env = started(backend, deploy(code, "infinite_loop", timeout_s=1))
    out = invoke(env, timeout_s=1.0)
    assert isinstance(out.error, FunctionTimeout)
    assert out.error.message == "Task timed out after 1.00 seconds"
    assert not out.reusable and env.state is EnvState.DEAD


def test_destroy_is_idempotent_and_removes_scratch(backend, code):
    env = started(backend, deploy(code, "hello"))
    dirs = [env._io_dir, env._tmp_dir]
    env.destroy()
    env.destroy()
    assert env.state is EnvState.DEAD
    assert not any(d and os.path.exists(d) for d in dirs)
