"""Reactor guests: warm state, init phase, snapshots, error documents, reactor failures."""

from __future__ import annotations

import json

import pytest

from runner.environments.base import EnvState
from runner.errors import FunctionInitError, FunctionTimeout, HandlerError
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-reactors"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def plain_backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-reactors-nosnap"), snapshots=False)
    yield b
    b.close()


def test_counter_state_persists_across_warm_invocations(backend, tmp_path):
    version = deploy(tmp_path, "counter", "handle")
    env = started(backend, version)
    counts = [json.loads(invoke(env).payload)["count"] for _ in range(3)]
    assert counts == [1, 2, 3]
    out = invoke(env)
    assert out.logs == b"counter: call 4\n"  # only this invocation's log lines
    # A second environment of the same version has its own instance.
    env2 = started(backend, version)
    assert json.loads(invoke(env2).payload) == {"count": 1}
    env.destroy()
    env2.destroy()


def test_heavy_init_from_snapshot_matches_running_init(backend, plain_backend, tmp_path):
    version = deploy(tmp_path, "heavy_init", "handle")
    snap_env = started(backend, version)
    init_env = started(plain_backend, version)
    assert snap_env.restored_from_snapshot and not init_env.restored_from_snapshot
    assert init_env.init_logs.endswith(b"heavy_init: table ready\n")
    snapped = [json.loads(invoke(snap_env).payload) for _ in range(2)]
    fresh = [json.loads(invoke(init_env).payload) for _ in range(2)]
    assert snapped == fresh
    assert snapped[0]["checksum"] > 0 and snapped[1]["calls"] == 2
    snap_env.destroy()
    init_env.destroy()


def test_snapshot_survives_a_backend_restart_without_rerunning_init(tmp_path):
    cache = str(tmp_path / "shared-cache")
    version = deploy(tmp_path, "heavy_init", "handle")
    first = new_backend(tmp_path / "a", cache_dir=cache)
    first.prepare(version)
    assert first._prepared[version.key].snapshot.built
    first.close()
    second = new_backend(tmp_path / "b", cache_dir=cache)
    second.prepare(version)
    snap = second._prepared[version.key].snapshot
    assert not snap.built  # loaded from disk: init did not run again
    env = started(second, version)
    assert json.loads(invoke(env).payload)["calls"] == 1
    env.destroy()
    second.close()


def test_reactor_error_document_is_a_handler_error_and_keeps_the_environment(backend, tmp_path):
    env = started(backend, deploy(tmp_path, "cpu_bound", "handle"))
    out = invoke(env, b'{"no": "number"}')
    assert isinstance(out.error, HandlerError)
    assert out.error.error_type == "BadRequest"
    assert out.error.message == 'event has no digits; send {"n": 1000}'
    assert out.reusable and env.state is EnvState.READY
    assert json.loads(invoke(env, b'{"n": 10}').payload)["n"] == 10
    env.destroy()


def test_cpu_bound_reactor_is_deterministic(backend, tmp_path):
    env = started(backend, deploy(tmp_path, "cpu_bound", "handle"))
    a = json.loads(invoke(env, b'{"n": 200000}').payload)
    b = json.loads(invoke(env, b'{"n": 200000}').payload)
    assert a == b and a["n"] == 200000 and a["result"] != 0
    env.destroy()


def test_reactor_timeout_retires_the_environment(backend, tmp_path):
    env = started(backend, deploy(tmp_path, "cpu_bound", "handle", timeout_s=1))
    out = invoke(env, b'{"n": 99999999999999}', timeout_s=1.0)
    assert isinstance(out.error, FunctionTimeout)
    assert out.error.message == "Task timed out after 1.00 seconds"
    assert not out.reusable and env.state is EnvState.DEAD


INIT_TRAPS = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64) (i64.const 0))
  (func $deep unreachable)
  (func (export "init") (call $deep)))
"""


def test_init_that_traps_is_an_init_error(plain_backend, tmp_path):
    env = plain_backend.create(deploy(tmp_path, INIT_TRAPS, "handle"))
    with pytest.raises(FunctionInitError) as info:
        env.start()
    assert "unreachable" in info.value.message
    assert info.value.stack_trace and info.value.stack_trace[0].startswith("deep ")
    assert env.state is EnvState.DEAD


def test_init_that_traps_falls_back_from_snapshot_to_per_environment_init(backend, tmp_path):
    version = deploy(tmp_path, INIT_TRAPS, "handle")
    backend.prepare(version)  # the snapshot attempt fails; the deploy itself does not
    env = backend.create(version)
    with pytest.raises(FunctionInitError):
        env.start()


RETURNS_OUT_OF_BOUNDS = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 65000) (i64.const 32)) (i64.const 4096))))
"""


def test_result_outside_memory_is_an_invalid_response(backend, tmp_path):
    env = started(backend, deploy(tmp_path, RETURNS_OUT_OF_BOUNDS, "handle"))
    out = invoke(env)
    assert out.error.error_type == "Runtime.InvalidResponse"
    assert not out.reusable


def test_reactor_trap_retires_the_environment(backend, tmp_path):
    wat = """
    (module
      (memory (export "memory") 1)
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "handle") (param i32 i32) (result i64) unreachable))
    """
    env = started(backend, deploy(tmp_path, wat, "handle"))
    out = invoke(env)
    assert out.error.error_type == "Runtime.WasmTrap"
    assert not out.reusable and env.state is EnvState.DEAD


def test_alloc_returning_a_pointer_past_memory_is_an_invalid_response(backend, tmp_path):
    # 0xFFFFFFF0 as an i32 is -16: it must not be taken as "16 bytes before the end".
    wat = """
    (module
      (memory (export "memory") 1)
      (func (export "alloc") (param i32) (result i32) (i32.const -16))
      (func (export "handle") (param i32 i32) (result i64) (i64.const 0)))
    """
    env = started(backend, deploy(tmp_path, wat, "handle"))
    out = invoke(env, b'{"a": 1}')
    assert out.error.error_type == "Runtime.InvalidResponse"
    assert "4294967280" in out.error.message
    assert not out.reusable


def test_c_reactor_built_with_wasi_libc(backend, plain_backend, tmp_path):
    # _initialize (wasi-libc constructors) and init (reads GREETING) run once, at deploy, into
    # the snapshot; without snapshots they run per environment. Both answer alike.
    version = deploy(tmp_path, "c_greeter", "handle", environment={"GREETING": "hej"})
    for b in (backend, plain_backend):
        env = started(b, version)
        first = invoke(env, b'{"x": 12345}')
        assert json.loads(first.payload) == {"greeting": "hej", "event_bytes": 12, "calls": 1}
        assert first.logs == b"c_greeter: call 1\n"
        assert json.loads(invoke(env).payload)["calls"] == 2
        assert env.restored_from_snapshot is (b is backend)
        env.destroy()
