"""Bounded guest output (docs/decisions/025-wasm-stdio-files.md): stdout and stderr live in
RAM-backed files, so what a guest writes must be cut at the limits, and a long-lived reactor's
log files must not keep what was already read."""

from __future__ import annotations

import os

import pytest

from runner.environments.wasm.guest_io import MAX_LOG_BYTES, TRUNCATED
from runner.model import MAX_PAYLOAD_BYTES
from tests.unit.environments.wasm.wasm_support import deploy, invoke, new_backend, started


def spew(fd: int, chunks: int, entry: str = "_start") -> str:
    """A module writing `chunks` x 64 KiB of 'a' to `fd`."""
    body = f"""
      (local $i i32)
      (memory.fill (i32.const 1024) (i32.const 97) (i32.const 65536))
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 65536))
      (loop $more
        (drop (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const {chunks}))))"""
    if entry == "_start":
        exports = f'(func (export "_start") {body})'
    else:
        exports = f"""(func (export "alloc") (param i32) (result i32) (i32.const 70000))
                      (func (export "handle") (param i32 i32) (result i64) {body}
                        (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 0)))"""
    return f"""(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 2)
      {exports})"""


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = new_backend(tmp_path_factory.mktemp("wasm-output"))
    yield b
    b.close()


def allocated(fd: int) -> int:
    return os.fstat(fd).st_blocks * 512


def test_stdout_over_6mb_is_cut_and_reported(backend, tmp_path):
    env = started(backend, deploy(tmp_path, spew(1, 128)))  # 8 MiB
    out = invoke(env)
    assert out.error.error_type == "Function.ResponseSizeTooLarge"
    assert out.reusable
    # the RAM file holds at most the limit (plus one page of slack), not all 8 MiB
    assert allocated(env._io.stdout_fd) <= MAX_PAYLOAD_BYTES + 4096
    env.destroy()


def test_stderr_over_1mib_is_truncated_with_a_marker(backend, tmp_path):
    env = started(backend, deploy(tmp_path, spew(2, 48)))  # 3 MiB
    out = invoke(env)
    assert out.error is None
    assert out.logs.endswith(TRUNCATED)
    assert len(out.logs) == MAX_LOG_BYTES + len(TRUNCATED)
    assert allocated(env._io.stderr_fd) <= MAX_LOG_BYTES + 4096
    env.destroy()


def test_reactor_log_files_release_what_was_read(backend, tmp_path):
    env = started(backend, deploy(tmp_path, spew(2, 8, entry="handle"), "handle"))  # 512 KiB a call
    for _ in range(3):
        out = invoke(env)
        assert out.error is None and len(out.logs) == 8 * 65536
    # the file's size is the guest's write offset (1.5 MiB); its memory was punched out
    assert os.fstat(env._io.stderr_fd).st_size == 3 * 8 * 65536
    assert allocated(env._io.stderr_fd) < 65536
    env.destroy()
