"""Benchmark of the WebAssembly runtime, driving WasmBackend directly (no server).

    .venv/bin/python bench/wasm_bench.py [--quick] [--split] [--json PATH]

Measures, in one run, side by side:
* baseline: compile + instantiate + run per invocation (what a naive host does);
* cold start = prepare + create + start + first invoke of a freshly deployed version, with the
  compiled-module disk cache cold (new cache dir) and warm (entry on disk, new backend = a
  server restart);
* warm invoke p50/p95/p99 for command and reactor guests, with and without the CPU cgroup lane;
* heavy-init reactor cold start from the init snapshot vs running init per environment;
* CPU share obtained by a CPU-bound guest at several memory sizes (target memory_mb/1769);
* how late an infinite loop is stopped after its deadline;
* cold and warm invocations of a command and a reactor through the real gRPC server.

`--split` measures only a cold start's parts in process instead (decision 082): per
environment, create(), start() and the first invoke() timed apart, for the echo reactor that
bench/run.py deploys, at 1769 MB (JSON default bench/results/wasm_split.json).

Prints a table and writes JSON (default bench/results/wasm_bench.json), with the load average
over the run. Numbers depend on the machine and its load; tests never assert on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wasmtime  # noqa: E402

from runner.environments.base import InvokeRequest  # noqa: E402
from runner.environments.wasm.backend import WasmBackend  # noqa: E402
from runner.environments.wasm.cache import wasmtime_version  # noqa: E402
from runner.model import FunctionConfig, FunctionVersion  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "guests", "wasm")
_rev = iter(range(1, 10**9))
SPLIT_WARMUP = 10  # --split: environments started and not counted first


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(samples_s: list[float]) -> dict:
    ms = [x * 1000 for x in samples_s]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
            "mean_ms": statistics.fmean(ms)}


class Bench:
    def __init__(self, work: str, quick: bool) -> None:
        self.work = work
        self.quick = quick
        self.results: dict = {}

    def version(self, guest: str, handler: str = "_start", module: bytes | None = None,
                **cfg) -> FunctionVersion:
        """A version of guests/wasm/`guest`.wasm, or of `module` (bytes) named `guest`."""
        rev = next(_rev)
        code = os.path.join(self.work, f"code-{rev}")
        os.makedirs(code)
        target = os.path.join(code, "function.wasm")
        if module is None:
            shutil.copy(os.path.join(GUESTS, f"{guest}.wasm"), target)
        else:
            with open(target, "wb") as f:
                f.write(module)
        return FunctionVersion(f"{guest}{rev}", "$LATEST", rev, FunctionConfig("wasm", handler, **cfg),
                               "0" * 64, code)

    def backend(self, name: str, **kw) -> WasmBackend:
        kw.setdefault("cache_dir", os.path.join(self.work, f"cache-{name}"))
        b = WasmBackend(os.path.join(self.work, f"work-{name}"), **kw)
        if b.cpu is not None and b.cpu.available:
            # As on a running server: spare CPU lanes are ready before the measured cold starts.
            b.cpu.release(b.cpu.acquire(1.0))
            time.sleep(0.3)
        return b

    @staticmethod
    def req(payload: bytes = b"{}", timeout: float = 3.0) -> InvokeRequest:
        return InvokeRequest("bench", payload, timeout, time.monotonic() + timeout)

    # ------------------------------------------------------------------ measurements

    def baseline(self, guest: str) -> dict:
        """Compile + instantiate + _start per invocation, stdio to /dev/shm files."""
        engine = wasmtime.Engine()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        with open(os.path.join(GUESTS, f"{guest}.wasm"), "rb") as f:
            wasm = f.read()
        io = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        with open(os.path.join(io, "in"), "wb") as f:
            f.write(b"{}")
        samples = []
        for _ in range(30 if self.quick else 100):
            t0 = time.perf_counter()
            module = wasmtime.Module(engine, wasm)
            store = wasmtime.Store(engine)
            wasi = wasmtime.WasiConfig()
            wasi.stdin_file = os.path.join(io, "in")
            wasi.stdout_file = os.path.join(io, "out")
            wasi.stderr_file = os.path.join(io, "err")
            store.set_wasi(wasi)
            linker.instantiate(store, module).exports(store)["_start"](store)
            samples.append(time.perf_counter() - t0)
            store.close()
        shutil.rmtree(io)
        return summary(samples)

    def cold(self, guest: str, handler: str, cache: str) -> dict:
        """First invoke of a freshly deployed version. cache="cold": a new, empty cache dir
        each time; "warm": the compiled module is on disk, nothing loaded (a server restart);
        "memory": the same module is already loaded (a redeploy of unchanged code)."""
        n = 10 if self.quick else 30
        samples, shared_cache = [], os.path.join(self.work, f"cold-{guest}-shared")
        if cache in ("warm", "memory"):
            b = self.backend("prime", cache_dir=shared_cache)
            b.prepare(self.version(guest, handler))
            b.close()
        b = self.backend(f"cold-{guest}-{cache}", cache_dir=shared_cache)
        for i in range(n):
            if cache == "cold":
                b.cache.dir = os.path.join(self.work, f"cold-{guest}-{i}")
                os.makedirs(b.cache.dir)
            if cache != "memory":
                b.cache._recent.clear()  # as after a restart: nothing loaded in this process
            v = self.version(guest, handler)
            t0 = time.perf_counter()
            b.prepare(v)
            env = b.create(v)
            env.start()
            out = env.invoke(self.req())
            samples.append(time.perf_counter() - t0)
            assert out.error is None, out.error
            env.destroy()
            b.forget(v)
        b.close()
        return summary(samples)

    def warm(self, guest: str, handler: str, payload: bytes = b"{}", **kw) -> dict:
        b = self.backend(f"warm-{guest}-{len(kw)}", **kw)
        v = self.version(guest, handler)
        env = b.create(v)
        env.start()
        n = 300 if self.quick else 2000
        for _ in range(20):
            env.invoke(self.req(payload))
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            out = env.invoke(self.req(payload))
            samples.append(time.perf_counter() - t0)
        assert out.error is None, out.error
        env.destroy()
        b.close()
        return summary(samples)

    def heavy_init(self, snapshots: bool) -> dict:
        b = self.backend(f"heavy-{snapshots}", snapshots=snapshots)
        # One full CPU, so the comparison shows init's cost rather than 128 MB's CPU share.
        v = self.version("heavy_init", "handle", memory_mb=1769, timeout_s=30)
        t0 = time.perf_counter()
        b.prepare(v)
        prepare_s = time.perf_counter() - t0
        samples, answers = [], set()
        for _ in range(5 if self.quick else 15):
            t0 = time.perf_counter()
            env = b.create(v)
            env.start()
            out = env.invoke(self.req())
            samples.append(time.perf_counter() - t0)
            answers.add(out.payload)
            env.destroy()
        b.close()
        res = summary(samples)
        res["prepare_ms"] = prepare_s * 1000
        res["identical_answers"] = len(answers) == 1
        return res

    def split(self) -> dict:
        """A cold start's parts in process, as the pool pays them once the version is prepared:
        create(), start() (scratch directories, the /tmp tmpfs mount, the store, instantiation,
        init) and the first invoke(), timed apart per environment. The echo reactor bench/run.py
        deploys, at 1769 MB: one vCPU, so no CPU lane (the suite's configuration). The first
        WARMUP environments are not counted (first-use costs of this process, not a start's)."""
        from bench.workloads import fixture_code

        module, handler = fixture_code("wasm")
        b = self.backend("split")
        v = self.version("echo_reactor", handler, module, memory_mb=1769)
        b.prepare(v)
        parts: dict[str, list[float]] = {"create": [], "start": [], "first_invoke": [],
                                         "total": []}
        for i in range(SPLIT_WARMUP + (100 if self.quick else 300)):
            t0 = time.perf_counter()
            env = b.create(v)
            t1 = time.perf_counter()
            env.start()
            t2 = time.perf_counter()
            out = env.invoke(self.req())
            t3 = time.perf_counter()
            assert out.error is None, out.error
            env.destroy()
            if i >= SPLIT_WARMUP:
                for part, s in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                    parts[part].append(s)
        b.close()
        return {f"split_{part}": summary(samples) for part, samples in parts.items()}

    def cpu_share(self, memory_mb: int) -> dict:
        b = self.backend(f"cpu-{memory_mb}")
        v = self.version("cpu_bound", "handle", memory_mb=memory_mb, timeout_s=30)
        env = b.create(v)
        env.start()
        n = 30_000_000 if self.quick else 100_000_000
        # At >= 1 vCPU there is no lane: the guest runs on this very thread
        # (environment.py, WasmEnvironment.start).
        lane = env._thread is not None
        tid = env._thread.native_id if lane else threading.get_native_id()

        def cpu_ns() -> int:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                return int(f.read().split()[0])

        c0, t0 = cpu_ns(), time.perf_counter()
        out = env.invoke(self.req(json.dumps({"n": n}).encode(), timeout=30))
        wall, cpu = time.perf_counter() - t0, (cpu_ns() - c0) / 1e9
        assert out.error is None, out.error
        env.destroy()
        b.close()
        return {"memory_mb": memory_mb, "target_cpus": round(memory_mb / 1769, 4),
                "measured_cpus": round(cpu / wall, 4), "wall_s": round(wall, 3),
                "enforcement": b.cpu_enforcement if lane else "no lane: caller's thread (>= 1 vCPU)"}

    def timeout_lateness(self, **kw) -> dict:
        b = self.backend(f"timeout-{len(kw)}", **kw)
        v = self.version("infinite_loop", timeout_s=1)
        late = []
        for _ in range(3 if self.quick else 8):
            env = b.create(v)
            env.start()
            t0 = time.monotonic()
            out = env.invoke(InvokeRequest("t", b"{}", 0.5, t0 + 0.5))
            late.append(time.monotonic() - t0 - 0.5)
            assert out.error is not None and out.error.error_type == "Sandbox.Timedout"
        b.close()
        return summary(late)

    def over_grpc(self) -> dict:
        """The same guests through the real server: Runner + gRPC on loopback, generated stubs."""
        import grpc

        from runner import Runner
        from runner.service.grpc.server import SERVER_OPTIONS, build_server
        from runner.service.proto import runner_api_pb2 as pb
        from runner.service.proto import runner_api_pb2_grpc as pb_grpc

        runner = Runner(os.path.join(self.work, "grpc-data"), idle_ttl_s=600)
        server, port = build_server(runner, "127.0.0.1", 0)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=SERVER_OPTIONS[:2])
        functions, invoker = pb_grpc.FunctionsStub(channel), pb_grpc.InvokerStub(channel)
        out = {}
        try:
            for guest, handler in (("hello", "_start"), ("counter", "handle")):
                with open(os.path.join(GUESTS, f"{guest}.wasm"), "rb") as f:
                    code = f.read()
                cold, warm = [], []
                for i in range(5 if self.quick else 20):
                    # A new function each time: a freshly deployed version (compiled cache warm
                    # after the first, as for any redeploy of the same module).
                    name = f"{guest}-{i}"
                    functions.Deploy(pb.DeployRequest(name=name, code=code, config=pb.FunctionConfig(
                        runtime="wasm", handler=handler)))
                    t0 = time.perf_counter()
                    resp = invoker.Invoke(pb.InvokeRequest(name=name, payload=b"{}"))
                    cold.append(time.perf_counter() - t0)
                    assert resp.function_error == "" and resp.report.cold_start
                for _ in range(200 if self.quick else 1000):
                    t0 = time.perf_counter()
                    resp = invoker.Invoke(pb.InvokeRequest(name=name, payload=b"{}"))
                    warm.append(time.perf_counter() - t0)
                assert resp.function_error == ""
                out[f"grpc_cold_{guest}"] = summary(cold)
                out[f"grpc_warm_{guest}"] = summary(warm)
        finally:
            channel.close()
            server.stop(grace=2).wait()
            runner.close()
        return out

    def run(self) -> dict:
        r = self.results
        r["baseline_compile_per_invoke_hello"] = self.baseline("hello")
        r["cold_hello_cache_cold"] = self.cold("hello", "_start", "cold")
        r["cold_hello_cache_warm"] = self.cold("hello", "_start", "warm")
        r["cold_hello_module_loaded"] = self.cold("hello", "_start", "memory")
        r["cold_counter_cache_warm"] = self.cold("counter", "handle", "warm")
        r["warm_hello_command"] = self.warm("hello", "_start")
        r["warm_echo_command_1kb"] = self.warm("echo", "_start", json.dumps({"d": "x" * 1000}).encode())
        r["warm_counter_reactor"] = self.warm("counter", "handle")
        r["warm_counter_reactor_no_cpu_lane"] = self.warm("counter", "handle", cpu_share=False)
        r["heavy_init_cold_snapshot"] = self.heavy_init(True)
        r["heavy_init_cold_no_snapshot"] = self.heavy_init(False)
        r["cpu_share"] = [self.cpu_share(m) for m in (128, 512, 1769)]
        r["timeout_lateness"] = self.timeout_lateness()
        r["timeout_lateness_no_cpu_lane"] = self.timeout_lateness(cpu_share=False)
        r.update(self.over_grpc())
        return r


def print_table(r: dict) -> None:
    rows = [(k, v) for k, v in r.items() if isinstance(v, dict) and "p50_ms" in v]
    print(f"{'measurement':40} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}  extra")
    for name, v in rows:
        extra = ""
        if "prepare_ms" in v:
            extra = f"prepare {v['prepare_ms']:.1f} ms, same answers: {v['identical_answers']}"
        print(f"{name:40} {v['n']:>5} {v['p50_ms']:>9.3f} {v['p95_ms']:>9.3f} {v['p99_ms']:>9.3f}  {extra}")
    print()
    if "cpu_share" not in r:
        return  # --split
    print(f"{'cpu share: memory_mb':24} {'target CPUs':>12} {'measured':>10} {'wall s':>8}  enforcement")
    for c in r["cpu_share"]:
        measured = "n/a" if c["measured_cpus"] is None else f"{c['measured_cpus']:.3f}"
        print(f"{c['memory_mb']:<24} {c['target_cpus']:>12.3f} {measured:>10} {c['wall_s']:>8.2f}  {c['enforcement']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument("--split", action="store_true",
                    help="only a cold start's parts in process: create, start, first invoke")
    ap.add_argument("--json", default=None, help="default bench/results/wasm_bench.json, or "
                    "wasm_split.json with --split")
    args = ap.parse_args()
    args.json = args.json or os.path.join(ROOT, "bench", "results", "wasm_split.json"
                                          if args.split else "wasm_bench.json")
    work = tempfile.mkdtemp(prefix="wasm-bench-")
    load_before = os.getloadavg()
    try:
        bench = Bench(work, args.quick)
        results = bench.split() if args.split else bench.run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc = {"wasmtime": wasmtime_version(), "python": platform.python_version(),
           "machine": platform.machine(), "cpus": os.cpu_count(), "quick": args.quick,
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           # 1-minute load average at the start and the end: the host is shared.
           "loadavg_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
           "results": results}
    print_table(results)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
