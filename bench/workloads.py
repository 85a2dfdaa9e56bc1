"""Our figures: the runner's cold start, warm invoke, throughput and idle-environment memory,
per registered runtime, measured through the real gRPC service (cold/warm/throughput) and the
embedding API (memory, where the pool can be inspected).

Every runtime runs the same fixture (bench/fixtures): an echo handler, so the figures are the
platform's cost, not the function's. For wasm that is a reactor (echo_reactor.wat), the shape
of a Lambda handler: one instance per environment, reused by warm invocations. The wasm
baselines run the command echo (echo.wat), which is what a per-invocation runtime can run;
bench/wasm_bench.py measures the runner with commands too.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time

import psutil

from bench import measure
from bench.servers import ServerProcess
from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
FOUR_GIB = 4 * 1024 ** 3
MiB = 1024 ** 2
ALL_RUNTIMES = ("python", "nodejs", "wasm")
# The fixture directory and handler per runtime; wasm's code is built from WAT at run time.
FIXTURE = {
    "python": ("python", "app.handler"),
    "nodejs": ("node", "index.handler"),
    "wasm": ("wasm", "handle"),
}
SLEEPING_RUNTIMES = ("python", "nodejs")
WARM_BLOCK = 50  # warm calls per block when the echo is measured alongside  # fixtures that honour {"sleep_ms": N}


def wasm_echo_bytes(wat: str = "echo.wat") -> bytes:
    """The command echo (the baselines'), or another fixture by file name."""
    import wasmtime

    with open(os.path.join(FIXTURES, "wasm", wat)) as f:
        return bytes(wasmtime.wat2wasm(f.read()))  # it returns a bytearray; protobuf wants bytes


def fixture_code(runtime: str) -> tuple[bytes, str]:
    """(code package, handler) for `runtime`'s echo fixture."""
    sub, handler = FIXTURE[runtime]
    if runtime == "wasm":
        return wasm_echo_bytes("echo_reactor.wat"), handler
    return zip_directory(os.path.join(FIXTURES, sub)), handler


def fixture_config(runtime: str, handler: str, **environment: str) -> pb.FunctionConfig:
    """How the suite deploys a fixture. Concurrency 64 lets 32 clients run at once; 1769 MB is
    one full vCPU, so the CPU share (memory/1769) does not throttle the echo and the figures
    measure the platform, not the quota."""
    return pb.FunctionConfig(runtime=runtime, handler=handler, concurrency=64, memory_mb=1769,
                             environment=environment)


def registered_runtimes() -> list[str]:
    """What this checkout can run, asked the same way the Runner asks."""
    from runner.environments.backends import default_backends

    with tempfile.TemporaryDirectory(prefix="bench-probe-") as scratch:
        backends = default_backends(scratch)
        try:
            return sorted(backends)
        finally:
            for b in backends.values():
                b.close()


class RunnerSession:
    """A runner server process with the runtime's fixture deployed, for the gRPC figures.

    `cold_sample()` is one cold start (so the suite can interleave it with the baselines'
    cold starts); `figures(cold_ms, init_ms)` then measures warm invokes and the load sweep."""

    def __init__(self, runtime: str, cfg) -> None:
        self.runtime, self.cfg = runtime, cfg
        self.code, self.handler = fixture_code(runtime)
        self.data = tempfile.mkdtemp(prefix=f"bench-{runtime}-", dir=cfg.cache_dir)
        self.server = ServerProcess("runner", self.data)
        try:
            measure.wait_ready(self.server.address)
            self.channel = measure.channel(self.server.address)
            self.functions = pb_grpc.FunctionsStub(self.channel)
            self.name = f"bench-{runtime}"
            self.client = measure.InvokeClient(self.server.address, self.name)
        except BaseException:
            self.server.close()
            shutil.rmtree(self.data, ignore_errors=True)
            raise
        self._deploys = 0
        self.init_ms: list[float] = []

    def _deploy(self, nonce: str) -> None:
        # A changed environment variable makes a new version: the pool has no environment for
        # it, which is exactly Lambda's cold start.
        self.functions.Deploy(pb.DeployRequest(
            name=self.name, code=self.code if self._deploys == 0 else b"",
            config=fixture_config(self.runtime, self.handler, BENCH_NONCE=nonce)))
        self._deploys += 1

    def cold_sample(self) -> float:
        self._deploy(f"cold-{self._deploys}")
        # Wake the invoke path first. On this VM any RPC after tens of ms of idle pays ~1-1.5
        # ms of wake-up (the bare echo: 0.6 ms back to back, 1.8 ms after 60 ms idle), and the
        # deploy just left client and server threads idle that long. The dry run takes that
        # toll, so the figure is the cold start: docs/benchmarks.md, "Cold start method".
        self.client.dry_run()
        t0 = time.perf_counter()
        resp = self.client.invoke()
        ms = (time.perf_counter() - t0) * 1000.0
        if not resp.report.cold_start:
            raise RuntimeError(f"{self.runtime}: first invoke of a fresh version was warm")
        self.init_ms.append(resp.report.init_duration_ms)
        return ms

    def figures(self, cold_ms: list[float], echo_srv: ServerProcess | None = None) -> dict:
        """Warm invokes and the load sweep. With `echo_srv`, the bare echo is measured
        alongside: warm calls alternate echo/runner, and each load level runs echo then runner,
        so overhead and throughput ratios compare figures taken under the same load."""
        cfg = self.cfg
        self._deploy("warm")
        self.client.invoke()  # the one cold start of this version, outside the sample
        echo = measure.InvokeClient(echo_srv.address, "echo") if echo_srv else None
        warm_ms, echo_ms = [], []

        def runner_call() -> None:
            if self.client.invoke().report.cold_start:
                raise RuntimeError(f"{self.runtime}: a warm invoke started an environment")

        try:
            # Blocks of back-to-back calls, echo then runner, until warm_n of each: each
            # server is measured warm (alternating single calls would add a wake-up to every
            # call of both), and both see the same stretch of machine load.
            while len(warm_ms) < cfg.warm_n:
                n = min(WARM_BLOCK, cfg.warm_n - len(warm_ms))
                if echo is not None:
                    echo_ms += measure.repeat(echo.invoke, n, warmup=2)
                warm_ms += measure.repeat(runner_call, n, warmup=2)
        finally:
            if echo is not None:
                echo.close()
        sweep, echo_sweep = {}, {}
        for level in cfg.levels:
            if echo_srv:
                echo_sweep[str(level)] = measure.closed_loop(
                    echo_srv.address, "echo", level, cfg.load_s, server_pid=echo_srv.pid).as_dict()
            sweep[str(level)] = measure.closed_loop(
                self.server.address, self.name, level, cfg.load_s,
                server_pid=self.server.pid).as_dict()
        cold = measure.summarize(cold_ms)
        warm = measure.summarize(warm_ms)
        out = {
            "cold_p50_ms": cold["p50_ms"], "cold_p99_ms": cold["p99_ms"],
            "warm_p50_ms": warm["p50_ms"], "warm_p99_ms": warm["p99_ms"],
            "throughput_rps": measure.peak_rps(sweep),
            "cold": cold, "init": measure.summarize(self.init_ms), "warm": warm,
            "throughput": sweep,
        }
        if echo_srv:
            e = measure.summarize(echo_ms)
            out["echo_alongside"] = {"warm_p50_ms": e["p50_ms"], "warm": e,
                                     "throughput_rps": measure.peak_rps(echo_sweep),
                                     "throughput": echo_sweep}
        return out

    def close(self) -> None:
        """Idempotent: run.py closes the session before measuring memory (so the server's
        processes cannot move) and again on the way out."""
        if self.server is None:
            return
        self.client.close()
        self.channel.close()
        self.server.close()
        self.server = None
        shutil.rmtree(self.data, ignore_errors=True)  # the run's registry and code copies


def grpc_figures(runtime: str, cfg) -> dict:
    """Cold start, warm invoke and the load sweep of one runtime, cold starts not interleaved."""
    session = RunnerSession(runtime, cfg)
    try:
        return session.figures([session.cold_sample() for _ in range(cfg.cold_n)])
    finally:
        session.close()


def _own_pss() -> int:
    return psutil.Process().memory_full_info().pss


def _total_pss() -> tuple[int, set[int]]:
    """PSS of this process plus all its descendants, and the descendants' pids."""
    kids = measure.descendants(os.getpid())
    return _own_pss() + measure.tree_pss_bytes(sorted(kids)), kids


def idle_memory(runtime: str, cfg) -> dict:
    """PSS per idle warm environment: N environments made idle in an embedded Runner (already
    constructed, so its fixed start-up cost is not counted), then the growth of the total PSS
    of this process and all its descendants, divided by N. The total covers every place an
    environment can live: its own processes, a helper or zygote process the backend keeps,
    or this very process for in-process runtimes. PSS, unlike RSS, adds up: pages shared
    between environments are split among them, not counted once per process."""
    from runner import Runner

    n = cfg.idle_envs
    code, handler = fixture_code(runtime)
    data = tempfile.mkdtemp(prefix=f"bench-mem-{runtime}-", dir=cfg.cache_dir)
    runner = Runner(data, idle_ttl_s=3600, max_environments=n + 8)
    try:
        before_total, before_children = _total_pss()
        before_self = _own_pss()
        if runtime in SLEEPING_RUNTIMES:
            # N overlapping invocations of one version force N environments of that version.
            runner.deploy("mem", code, runtime=runtime, handler=handler, concurrency=n)
            hold = f'{{"sleep_ms": {cfg.hold_ms}}}'.encode()
            errors: list[BaseException] = []

            def call() -> None:
                try:
                    runner.invoke("mem", hold)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=call) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise RuntimeError(f"{runtime}: {errors[0]!r}") from errors[0]
            method = f"{n} overlapping invocations of one version"
        else:
            # No sleep in the wasm fixture: one environment per function, N functions. At
            # least 30: a wasm environment is ~30 KB inside the server's own heap, so a handful
            # would be lost in its noise (and they cost milliseconds to make).
            n = max(n, 30)
            for i in range(n):
                runner.deploy(f"mem-{i}", code, runtime=runtime, handler=handler)
                runner.invoke(f"mem-{i}", b"{}")
            method = f"{n} functions, one environment each"
        idle = sum(v["idle"] for v in runner.pool.stats()["versions"].values())
        time.sleep(0.2)  # let start-up allocations settle before reading PSS
        after_total, after_children = _total_pss()
        host_growth = _own_pss() - before_self
    finally:
        runner.close()
        shutil.rmtree(data, ignore_errors=True)
    if idle == 0:
        raise RuntimeError(f"{runtime}: no idle environment after the warm-up")
    env_processes = len(after_children - before_children)
    if runtime in SLEEPING_RUNTIMES and env_processes < idle:
        # Each idle environment of a process runtime is at least one live process: fewer
        # means environments died under the pool (the figure would divide by ghosts).
        raise RuntimeError(f"{runtime}: {idle} idle environments but only {env_processes} "
                           "new processes; environments died during the measurement")
    per_env = (after_total - before_total) / idle
    if per_env <= 0:
        raise RuntimeError(f"{runtime}: total PSS did not grow with {idle} idle environments")
    return {
        "idle_envs": idle, "method": method,
        "env_processes": env_processes,
        "pss_per_env_mb": per_env / MiB, "host_growth_mb": host_growth / MiB,
        "fit_in_4gib": math.floor(FOUR_GIB / per_env),
    }
