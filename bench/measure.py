"""Measurement primitives shared by every workload and baseline: percentiles, timed loops,
concurrent gRPC client loops, and PSS of process trees.

Every figure the suite prints comes from these functions, so ours and the baselines are
measured with the same clock, the same percentile rule and the same client code.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc
import psutil

from runner.service.grpc.server import SERVER_OPTIONS
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc

CONCURRENCY_LEVELS = (1, 2, 8, 32)
PAYLOAD = b'{"bench": "payload", "n": 1}'


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100). Nearest rank never invents
    a value between two samples, so p99 of a small sample is its largest value, not a guess."""
    if not sorted_ms:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def summarize(samples_ms: list[float]) -> dict:
    s = sorted(samples_ms)
    return {"p50_ms": percentile(s, 50), "p95_ms": percentile(s, 95),
            "p99_ms": percentile(s, 99), "n": len(s)}


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds one call of `fn` takes (monotonic, high resolution)."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def repeat(fn: Callable[[], object], n: int, warmup: int = 0) -> list[float]:
    for _ in range(warmup):
        fn()
    return [timed(fn) for _ in range(n)]


def interleave(samplers: dict[str, tuple[Callable[[], float], int]]) -> tuple[dict, dict]:
    """Take each sampler's samples (fn() -> ms, count) spread evenly over the same rounds, so
    that on a noisy machine every system sees the same stretch of load, and their ratios mean
    something. Returns ({name: [ms...]}, {name: error message}); a sampler that raises stops
    being sampled, the others go on."""
    rounds = max((n for _, n in samplers.values()), default=0)
    out: dict[str, list[float]] = {name: [] for name in samplers}
    failed: dict[str, str] = {}
    for i in range(rounds):
        for name, (fn, n) in samplers.items():
            # Sampler with n of `rounds` samples: one in round i when floor(i*n/rounds) steps.
            if name in failed or (i + 1) * n // rounds == i * n // rounds:
                continue
            try:
                out[name].append(fn())
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
    return out, failed


def channel(address: str) -> grpc.Channel:
    """The one client configuration used against every gRPC server in the suite (ours and the
    bare echo), the same as the integration tests' client."""
    return grpc.insecure_channel(address, options=SERVER_OPTIONS[:2])


def wait_ready(address: str, timeout_s: float = 15.0) -> None:
    ch = channel(address)
    try:
        grpc.channel_ready_future(ch).result(timeout=timeout_s)
    finally:
        ch.close()


class InvokeClient:
    """One gRPC client (its own channel) invoking one function by name."""

    def __init__(self, address: str, name: str, payload: bytes = PAYLOAD) -> None:
        self.channel = channel(address)
        self.stub = pb_grpc.InvokerStub(self.channel)
        self.request = pb.InvokeRequest(name=name, payload=payload)

    def invoke(self) -> pb.InvokeResponse:
        resp = self.stub.Invoke(self.request)
        if resp.function_error:
            # A failing function would make every figure meaningless; stop loudly instead.
            raise RuntimeError(f"function error during benchmark: {resp.payload[:300]!r}")
        return resp

    def dry_run(self) -> None:
        """A DryRun invoke (validated, nothing runs): the same RPC, channel and server path as
        invoke() without touching an environment. Used to wake that path after idle time."""
        resp = self.stub.Invoke(pb.InvokeRequest(
            name=self.request.name, payload=self.request.payload, invocation_type=pb.DRY_RUN))
        if resp.status_code != 204:
            raise RuntimeError(f"dry run answered {resp.status_code}, expected 204")

    def close(self) -> None:
        self.channel.close()


@dataclass
class LoadResult:
    clients: int
    completed: int
    elapsed_s: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    cold_starts: int = 0  # invocations in the window that started an environment
    # CPU seconds used in the window by the server's process tree (server, guests) and by
    # this client process; None when not measured. server_process_cpu_s is the server process
    # alone (its RPC threads, host work and in-process guests such as wasm): the tree minus it
    # is what out-of-process guests (and zygotes) spent.
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None
    server_process_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict:
        out = {"clients": self.clients, "throughput_rps": self.rps,
               "cold_starts": self.cold_starts, **summarize(self.latencies_ms)}
        # CPU per invocation says why a ratio is what it is: with client and servers on the
        # same few CPUs, peak inv/s is roughly the CPUs over the CPU all of them spend per call.
        for key, cpu in (("server_cpu_ms_per_inv", self.server_cpu_s),
                         ("server_process_cpu_ms_per_inv", self.server_process_cpu_s),
                         ("client_cpu_ms_per_inv", self.client_cpu_s)):
            if cpu is not None and self.completed:
                out[key] = cpu * 1000.0 / self.completed
        return out


def tree_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of `pid` and each of its live descendants, by pid."""
    out: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[p.pid] = t.user + t.system
    return out


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two tree_cpu_s() samples: processes that started in between
    count whole; one that exited in between is missed after `before` (rare in a warm window:
    cold starts there are counted and reported)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def closed_loop(address: str, name: str, clients: int, duration_s: float,
                warmup_s: float | None = None, payload: bytes = PAYLOAD,
                server_pid: int | None = None) -> LoadResult:
    """`clients` threads, each with its own channel, invoking back to back for `duration_s`.
    Closed loop (a client sends its next request when the previous answer arrives), so the
    invocations per second are what the server sustains at that concurrency. With
    `server_pid`, the CPU that server's process tree and this client use in the window is
    measured too."""
    conns = [InvokeClient(address, name, payload) for _ in range(clients)]
    per_client: list[list[float]] = [[] for _ in range(clients)]
    colds = [0] * clients
    errors: list[BaseException] = []
    # Two gates: all threads first run at full concurrency for a warm-up period (so the
    # runner's pool grows to what this concurrency needs before the window opens: a fixed
    # number of warm-up calls is not enough, since the clients' first calls need not
    # overlap), then the measured window opens for all at once. Cold starts that still land
    # in the window are counted and reported.
    if warmup_s is None:
        warmup_s = min(1.0, max(0.3, duration_s / 2))
    warm_until = time.perf_counter() + warmup_s
    warmed = threading.Barrier(clients + 1)
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def loop(i: int) -> None:
        out = per_client[i]
        call = conns[i].invoke
        try:
            call()  # at least one call per channel (connects it)
            while time.perf_counter() < warm_until:
                call()
        except BaseException as exc:
            errors.append(exc)
        warmed.wait()
        start_gate.wait()
        if errors:
            return
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at[0]:
                    return
                resp = call()
                out.append((time.perf_counter() - t0) * 1000.0)
                colds[i] += resp.report.cold_start
        except BaseException as exc:  # surfaced below: a failed run must not report numbers
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    warmed.wait()
    cpu_before = tree_cpu_s(server_pid) if server_pid else None
    own_before = _own_cpu_s()
    begin = time.perf_counter()
    stop_at[0] = begin + duration_s
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    own_cpu = _own_cpu_s() - own_before
    server_cpu = process_cpu = None
    if server_pid:
        cpu_after = tree_cpu_s(server_pid)
        server_cpu = cpu_between(cpu_before, cpu_after)
        if server_pid in cpu_before and server_pid in cpu_after:
            process_cpu = cpu_after[server_pid] - cpu_before[server_pid]
    for c in conns:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed under load: {errors[0]!r}") from errors[0]
    lat = [x for xs in per_client for x in xs]
    return LoadResult(clients, len(lat), elapsed, lat, sum(colds), server_cpu, own_cpu, process_cpu)


def load_sweep(address: str, name: str, duration_s: float,
               levels: tuple[int, ...] = CONCURRENCY_LEVELS, server_pid: int | None = None) -> dict:
    """Closed-loop results per concurrency level, keyed by the client count as a string (JSON)."""
    return {str(n): closed_loop(address, name, n, duration_s, server_pid=server_pid).as_dict()
            for n in levels}


def peak_rps(sweep: dict) -> float:
    return max(level["throughput_rps"] for level in sweep.values())


def tree_pss_bytes(pids: list[int]) -> int:
    """Sum of PSS over processes: PSS splits shared pages among their sharers, so summing it over
    many environments counts shared interpreter pages once overall, not once per process."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total


def descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()
