"""A mixed load on a running server: N gRPC clients for T seconds against Python, Node.js and
wasm functions, some succeeding, some failing and some timing out (1 s) on purpose.

Used by tests/reliability/test_load.py (the verdict) and bench/load_bench.py (the figures).
Each call's outcome is checked against what was asked of it; anything else is counted:

* platform error: any gRPC error (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED past the 30 s client
  deadline, RESOURCE_EXHAUSTED...): the load must produce none;
* wrong outcome: e.g. a call asked to succeed that failed, or a timeout reported as a crash;
* latency: per kind; what matters is the timeouts' (a 1 s timeout must be reported within
  1.5 s at p99, issue 17 item 7).
"""

from __future__ import annotations

import io
import json
import random
import statistics
import threading
import time
import zipfile
from dataclasses import dataclass, field

import grpc

from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc

TIMEOUT_S = 1
CLIENT_DEADLINE_S = 30.0
KINDS = (("ok", 0.8), ("fail", 0.1), ("timeout", 0.1))

PYTHON = b"""import time
def handler(event, context):
    k = event.get("k")
    if k == "fail":
        raise ValueError("asked to fail")
    if k == "timeout":
        time.sleep(30)
    return {"ok": True}
"""

NODE = b"""exports.handler = async (event) => {
  if (event.k === "fail") throw new Error("asked to fail");
  if (event.k === "timeout") { for (;;) {} }  // busy: only the runner's kill ends it
  return { ok: true };
};
"""

# wasm: one module per kind (a WASI command cannot cheaply read its event in WAT)
WASM = {
    "ok": '(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) '
          '(result i32))) (memory (export "memory") 1) (data (i32.const 16) "{\\"ok\\":true}") '
          '(func (export "_start") (i32.store (i32.const 0) (i32.const 16)) '
          '(i32.store (i32.const 4) (i32.const 11)) '
          '(drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))',
    "fail": '(module (memory (export "memory") 1) (func (export "_start") unreachable))',
    "timeout": '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))',
}


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


@dataclass(frozen=True)
class Target:
    function: str
    runtime: str

    def payload(self, kind: str) -> bytes:
        return json.dumps({"k": kind}).encode()

    def name_for(self, kind: str) -> str:
        return f"{self.function}-{kind}" if self.runtime == "wasm" else self.function


def deploy_all(channel: grpc.Channel, runtimes: tuple[str, ...], concurrency: int) -> list[Target]:
    """Deploy the load's functions; one Target per runtime."""
    import wasmtime

    functions = pb_grpc.FunctionsStub(channel)

    def deploy(name: str, runtime: str, handler: str, code: bytes) -> None:
        functions.Deploy(pb.DeployRequest(name=name, code=code, config=pb.FunctionConfig(
            runtime=runtime, handler=handler, timeout_s=TIMEOUT_S, concurrency=concurrency)),
            timeout=120)

    targets = []
    for runtime in runtimes:
        if runtime == "python":
            deploy("load-py", "python", "app.handler", _zip("app.py", PYTHON))
            targets.append(Target("load-py", "python"))
        elif runtime == "nodejs":
            deploy("load-node", "nodejs", "index.handler", _zip("index.js", NODE))
            targets.append(Target("load-node", "nodejs"))
        elif runtime == "wasm":
            for kind, wat in WASM.items():
                deploy(f"load-wasm-{kind}", "wasm", "_start",
                       _zip("function.wasm", wasmtime.wat2wasm(wat)))
            targets.append(Target("load-wasm", "wasm"))
    return targets


@dataclass
class LoadResult:
    clients: int
    seconds: float
    calls: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # "<runtime>/<kind>" -> s
    cold: dict[str, list[float]] = field(default_factory=dict)  # the same, cold starts only: s
    init_s: dict[str, list[float]] = field(default_factory=dict)  # their Init Duration
    platform_errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def add(self, key: str, seconds: float, report: pb.Report | None = None) -> None:
        self.latencies.setdefault(key, []).append(seconds)
        if report is not None and report.cold_start:
            self.cold.setdefault(key, []).append(seconds)
            self.init_s.setdefault(key, []).append(report.init_duration_ms / 1000.0)

    def kind(self, kind: str) -> list[float]:
        return [s for k, v in self.latencies.items() if k.endswith("/" + kind) for s in v]

    def summary(self) -> dict:
        out = {"clients": self.clients, "seconds": self.seconds, "calls": self.calls,
               "platform_errors": len(self.platform_errors), "wrong_outcomes": len(self.wrong),
               "first_errors": (self.platform_errors + self.wrong)[:5]}
        for key in sorted(self.latencies) + ["all/timeout"]:
            samples = self.kind("timeout") if key == "all/timeout" else self.latencies[key]
            if samples:
                out[key] = {"n": len(samples), "p50_s": round(statistics.median(samples), 3),
                            "p99_s": round(p99(samples), 3), "max_s": round(max(samples), 3)}
                cold = self.cold.get(key, [])
                if cold:  # how many were cold starts, and what their init cost
                    out[key].update(cold=len(cold), cold_p50_s=round(statistics.median(cold), 3),
                                    init_p50_s=round(statistics.median(self.init_s[key]), 3),
                                    init_max_s=round(max(self.init_s[key]), 3))
        return out


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1 \
        else samples[0]


def _check(target: Target, kind: str, resp: pb.InvokeResponse) -> str | None:
    """None if `resp` is what `kind` asked for, else what was wrong."""
    etype = resp.error.error_type if resp.function_error else ""
    if kind == "ok" and (resp.function_error or json.loads(resp.payload or b"null") != {"ok": True}):
        return f"{target.runtime} ok: {etype or resp.payload[:80]!r}"
    if kind == "fail" and (not resp.function_error or etype == "Sandbox.Timedout"):
        return f"{target.runtime} fail: {etype or 'succeeded'}"
    if kind == "timeout" and etype != "Sandbox.Timedout":
        return f"{target.runtime} timeout: {etype or 'succeeded'} {resp.error.error_message[:80]}"
    return None


def run_load(address: str, targets: list[Target], clients: int, seconds: float,
             seed: int = 17) -> LoadResult:
    """`clients` threads, each with its own channel, call random targets and kinds for
    `seconds` (closed loop: each sends its next call when the last one returns)."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    kinds, weights = zip(*KINDS)

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        with grpc.insecure_channel(address) as channel:
            invoker = pb_grpc.InvokerStub(channel)
            while time.monotonic() < stop_at:
                target = rng.choice(targets)
                kind = rng.choices(kinds, weights)[0]
                t0 = time.monotonic()
                try:
                    resp = invoker.Invoke(pb.InvokeRequest(
                        name=target.name_for(kind), payload=target.payload(kind)),
                        timeout=CLIENT_DEADLINE_S)
                    problem = _check(target, kind, resp)
                    error, report = None, resp.report
                except grpc.RpcError as exc:
                    problem, report = None, None
                    error = f"{target.runtime} {kind}: {exc.code().name} {exc.details()}"
                elapsed = time.monotonic() - t0
                with lock:
                    result.calls += 1
                    if error is not None:
                        result.platform_errors.append(error)
                    elif problem is not None:
                        result.wrong.append(problem)
                    else:
                        result.add(f"{target.runtime}/{kind}", elapsed, report)

    threads = [threading.Thread(target=client, args=(i,), name=f"load-{i}") for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result
