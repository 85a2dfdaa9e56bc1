"""Shared helpers for the wasm runtime's tests: deploy a guest as a FunctionVersion, invoke it.

Imported by the test modules beside it."""

from __future__ import annotations

import itertools
import os
import shutil
import time

import wasmtime

from runner.environments.base import InvokeOutcome, InvokeRequest
from runner.environments.wasm.backend import WasmBackend
from runner.model import FunctionConfig, FunctionVersion
from tests.conftest import ROOT

GUESTS = os.path.join(ROOT, "guests", "wasm")
_revisions = itertools.count(1)


def guest_bytes(name: str) -> bytes:
    with open(os.path.join(GUESTS, f"{name}.wasm"), "rb") as f:
        return f.read()


def deploy(tmp_path, module: bytes | str, handler: str = "_start", **config) -> FunctionVersion:
    """A version whose code dir holds `module` (bytes, a guest name, or WAT text) as
    function.wasm, the way the registry lays it out."""
    if isinstance(module, str):
        module = guest_bytes(module) if not module.lstrip().startswith("(") else wasmtime.wat2wasm(module)
    rev = next(_revisions)
    code_dir = tmp_path / f"code-{rev}"
    code_dir.mkdir()
    (code_dir / "function.wasm").write_bytes(bytes(module))
    cfg = FunctionConfig("wasm", handler, **config)
    return FunctionVersion(f"fn{rev}", "$LATEST", rev, cfg, "0" * 64, str(code_dir))


def invoke(env, payload: bytes = b"{}", timeout_s: float | None = None) -> InvokeOutcome:
    t = timeout_s if timeout_s is not None else env.version.config.timeout_s
    return env.invoke(InvokeRequest("req-1", payload, t, time.monotonic() + t))


def started(backend: WasmBackend, version: FunctionVersion):
    env = backend.create(version)
    env.start()
    return env


def new_backend(tmp_path, **kw) -> WasmBackend:
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    kw.setdefault("fuel", False)  # independent of RUNNER_WASM_FUEL in the caller's environment
    return WasmBackend(str(tmp_path / "work"), **kw)


def remove_tree(path) -> None:
    shutil.rmtree(path, ignore_errors=True)
