"""Hostile WebAssembly guests: each fails as a function or deploy error; the backend survives."""

from __future__ import annotations

import json
import os

import pytest

from runner.errors import InvalidCodePackage
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-hostile"))
    yield b
    b.close()


@pytest.fixture(autouse=True)
def backend_still_serves(backend, tmp_path):
    yield
    # A generous timeout: this checks that the backend still serves, not how fast (CI shares
    # the host); a failure shows the error the call got.
    env = started(backend, deploy(tmp_path, "hello", timeout_s=60))
    out = invoke(env)
    assert out.error is None, out.error.to_document()
    assert json.loads(out.payload) == {"message": "hello from wasm"}
    env.destroy()


def test_unbounded_recursion_is_a_stack_overflow_trap(backend, tmp_path):
    wat = """(module (memory (export "memory") 1)
               (func $down (param i64) (result i64)
                 (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
               (func (export "_start") (drop (call $down (i64.const 0)))))"""
    env = started(backend, deploy(tmp_path, wat))
    out = invoke(env)
    assert out.error.error_type == "Runtime.WasmTrap"
    assert "stack_overflow" in out.error.message
    env.destroy()


def test_huge_table_is_refused_at_deploy(backend, tmp_path):
    wat = """(module (table 50000000 funcref) (func (export "_start")))"""
    with pytest.raises(InvalidCodePackage) as info:
        backend.prepare(deploy(tmp_path, wat))
    assert "cannot be instantiated" in info.value.message


def test_reactor_claiming_a_response_over_6mb(backend, tmp_path):
    wat = """(module (memory (export "memory") 200)
               (func (export "alloc") (param i32) (result i32) (i32.const 1024))
               (func (export "handle") (param i32 i32) (result i64)
                 (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 7000000))))"""
    env = started(backend, deploy(tmp_path, wat, "handle"))
    out = invoke(env)
    assert out.error.error_type == "Function.ResponseSizeTooLarge"
    env.destroy()


def test_memory_grow_in_a_reactor_is_capped_and_the_environment_retired(backend, tmp_path):
    wat = """(module (memory (export "memory") 1)
               (func (export "alloc") (param i32) (result i32) (i32.const 1024))
               (func (export "handle") (param i32 i32) (result i64)
                 (loop $more (br_if $more (i32.ne (memory.grow (i32.const 64)) (i32.const -1))))
                 unreachable))"""
    env = started(backend, deploy(tmp_path, wat, "handle", memory_mb=128))
    out = invoke(env)
    assert out.error.error_type == "Runtime.OutOfMemory"
    assert not out.reusable


# Writes 64 KiB blocks to /tmp/fill until a write fails (at most 1 GiB), then prints
# "<wasi errno> <bytes written>". WASI's errno for ENOSPC is 51 ("nospc").
DISK_FILLER = """
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "fill")
  (func $digits (param $v i64) (param $end i32) (result i32)  ;; decimal of $v ending before $end
    (loop $more
      (local.set $end (i32.sub (local.get $end) (i32.const 1)))
      (i64.store8 (local.get $end) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $more (i64.ne (local.get $v) (i64.const 0))))
    (local.get $end))
  (func (export "_start")
    (local $err i32) (local $total i64) (local $n i32) (local $start i32)
    ;; O_CREAT|O_TRUNC (oflags 9), rights: fd_write (64)
    (local.set $err (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 4)
                       (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (i32.eqz (local.get $err))
      (then
        (i32.store (i32.const 0) (i32.const 65536))   ;; iovec: 64 KiB from offset 65536
        (i32.store (i32.const 4) (i32.const 65536))
        (block $done
          (loop $again
            (local.set $err (call $write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1)
                                         (i32.const 8)))
            (br_if $done (local.get $err))
            (br_if $done (i32.eqz (i32.load (i32.const 8))))
            (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (i32.load (i32.const 8)))))
            (br_if $again (i64.lt_u (local.get $total) (i64.const 1073741824)))))))
    ;; "<err> <total>" built backwards in [200, 1000)
    (local.set $start (call $digits (local.get $total) (i32.const 1000)))
    (local.set $start (i32.sub (local.get $start) (i32.const 1)))
    (i32.store8 (local.get $start) (i32.const 32))
    (local.set $start (call $digits (i64.extend_i32_u (local.get $err)) (local.get $start)))
    (i32.store (i32.const 0) (local.get $start))
    (i32.store (i32.const 4) (i32.sub (i32.const 1000) (local.get $start)))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
WASI_ENOSPC = 51


def test_disk_filler_gets_enospc_at_its_ephemeral_storage(backend, tmp_path):
    # Before the cap, a guest with ephemeral_storage_mb=10 wrote 64 MB to /tmp and filled the
    # data directory. Now its /tmp is a 10 MiB tmpfs: the write past it fails in the guest.
    if os.geteuid() != 0:
        pytest.skip("capping wasm /tmp mounts a tmpfs, which needs root (CAP_SYS_ADMIN)")
    env = started(backend, deploy(tmp_path, DISK_FILLER, ephemeral_storage_mb=10))
    assert os.path.ismount(env._tmp_dir)  # on its own tmpfs, not the work directory's disk
    out = invoke(env)
    assert out.error is None, out.error
    err, written = (int(x) for x in json.loads(out.payload).split())
    assert err == WASI_ENOSPC
    assert 9 * MiB <= written <= 10 * MiB
    assert os.path.getsize(os.path.join(env._tmp_dir, "fill")) == written
    assert json.loads(invoke(env).payload).split()[0] == str(WASI_ENOSPC)  # reusable, still capped
    tmp_dir = env._tmp_dir
    env.destroy()
    assert not os.path.exists(tmp_dir)  # unmounted and removed


def test_disk_filler_cap_is_the_memory_when_that_is_smaller(backend, tmp_path):
    # A tmpfs lives in RAM: /tmp never holds more than the function's memory.
    if os.geteuid() != 0:
        pytest.skip("capping wasm /tmp mounts a tmpfs, which needs root (CAP_SYS_ADMIN)")
    env = started(backend, deploy(tmp_path, DISK_FILLER, ephemeral_storage_mb=512, memory_mb=128))
    assert os.statvfs(env._tmp_dir).f_blocks * os.statvfs(env._tmp_dir).f_frsize == 128 * MiB
    env.destroy()
