"""CPU share, fuel accounting and WASI capabilities."""

from __future__ import annotations

import json
import os
import threading

import pytest

from runner.environments.wasm.cpu import cfs_period_quota
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-limits"))
    yield b
    b.close()


def test_cfs_quota_is_memory_proportional():
    period, quota = cfs_period_quota(128 / 1769)
    assert quota == 1000 and abs(quota / period - 128 / 1769) < 0.002
    period, quota = cfs_period_quota(1769 / 1769)
    assert (period, quota) == (10_000, 10_000)
    period, quota = cfs_period_quota(3538 / 1769)
    assert quota / period == 2.0


def test_guest_calls_run_on_a_thread_inside_the_environments_cgroup(backend, tmp_path):
    env = started(backend, deploy(tmp_path, "counter", "handle", memory_mb=512))
    if backend.cpu_enforcement == "none":
        # Hosts without a writable cgroup v1 cpu controller: said so, and guests still run.
        assert backend.cpu.reason
        assert env._thread is None and invoke(env).error is None
        env.destroy()
        return
    assert backend.cpu_enforcement == "cgroup-v1-thread"
    group = env._cpu.path
    with open(os.path.join(group, "cpu.cfs_quota_us")) as f:
        quota = int(f.read())
    with open(os.path.join(group, "cpu.cfs_period_us")) as f:
        period = int(f.read())
    assert (period, quota) == cfs_period_quota(512 / 1769)
    seen = {}

    def spy():
        seen["tid"] = threading.get_native_id()

    env._thread.call(spy)
    with open(os.path.join(group, "tasks")) as f:
        assert str(seen["tid"]) in f.read().split()
    assert seen["tid"] != threading.get_native_id()  # never the caller's thread
    assert json.loads(invoke(env).payload) == {"count": 1}
    env.destroy()


@pytest.mark.parametrize("memory_mb", [1769, 3538])
def test_a_whole_vcpu_or_more_runs_guest_calls_on_the_callers_thread(backend, tmp_path, memory_mb):
    # One thread cannot use more than one CPU, so a quota of >= 1 vCPU would never throttle a
    # guest call: no cgroup lane is taken and no thread hand-off is paid.
    env = started(backend, deploy(tmp_path, "counter", "handle", memory_mb=memory_mb))
    assert env._thread is None and env._cpu is None and env._lane is None
    seen = {}
    env._on_guest_thread(lambda: seen.setdefault("tid", threading.get_native_id()))
    assert seen["tid"] == threading.get_native_id()
    assert json.loads(invoke(env).payload) == {"count": 1}
    env.destroy()


def test_fuel_consumed_is_reported_when_enabled(tmp_path):
    b = new_backend(tmp_path, fuel=True)
    env = started(b, deploy(tmp_path, "cpu_bound", "handle"))
    small = invoke(env, b'{"n": 1000}')
    big = invoke(env, b'{"n": 100000}')
    assert small.logs.startswith(b"[runner] fuel consumed: ")
    assert big.error is None and env.last_fuel_consumed > 10 * int(small.logs.split()[-1])
    env.destroy()
    b.close()


def test_tmp_is_private_per_environment_and_writable(backend, tmp_path):
    # The guest writes /tmp/marker; a second environment does not see it.
    wat = """
    (module
      (import "wasi_snapshot_preview1" "path_open"
        (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 64) "marker")
        (func (export "_start")
        ;; O_CREAT|O_EXCL (oflags 5): prints 0 when it created the file, 1 when it existed
        (i32.store (i32.const 0) (i32.const 48))
        (i32.store (i32.const 4) (i32.const 1))
        (i32.store8 (i32.const 48) (i32.add (i32.const 48)
          (i32.ne (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 6)
                    (i32.const 5) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16))
                  (i32.const 0))))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
    """
    version = deploy(tmp_path, wat)
    env = started(backend, version)
    assert invoke(env).payload == b"0"  # created
    assert invoke(env).payload == b"1"  # exists now: /tmp persists within the environment
    other = started(backend, version)
    assert invoke(other).payload == b"0"  # a fresh environment has an empty /tmp
    assert not os.path.exists("/tmp/marker")  # and it is not the host's /tmp
    env.destroy()
    other.destroy()


def test_close_leaves_no_cgroup_behind(tmp_path):
    b = new_backend(tmp_path)
    env = started(b, deploy(tmp_path, "hello"))
    invoke(env)
    parent = b.cpu._dir
    env.destroy()
    b.close()
    assert parent is None or not os.path.exists(parent)


def test_fuel_can_be_turned_on_by_the_servers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_WASM_FUEL", "1")
    b = new_backend(tmp_path, fuel=None)  # None: decided by the environment
    env = started(b, deploy(tmp_path, "hello"))
    assert b.fuel
    assert invoke(env).logs.startswith(b"hello: greeting sent\n[runner] fuel consumed: ")
    env.destroy()
    b.close()
