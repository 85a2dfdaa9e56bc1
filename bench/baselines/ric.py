"""Baseline: AWS's runtime interface clients, `awslambdaric` (PyPI) and `aws-lambda-ric` (npm),
each driven through the local Runtime API of runtime_api.py with the same fixture handler.

Cold: event queued, then the client process spawned; the clock stops when the client POSTs the
result (a fresh process and a fresh Runtime API per sample, so no stale poller can take an
event). Warm: one live client, event queued -> result POSTed. Throughput: one client in a closed
loop; a Lambda environment runs one invocation at a time, so this is per environment.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time

from bench import measure
from bench.baselines.runtime_api import RuntimeAPI

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(HERE, "fixtures")
MiB = 1024 ** 2


def node_ric_entry(cache_dir: str) -> str:
    return os.path.join(cache_dir, "npm", "node_modules", "aws-lambda-ric", "bin", "index.mjs")


def command(runtime: str, cache_dir: str) -> tuple[list[str] | None, str, str]:
    """(argv or None, task root, reason when unavailable)."""
    if runtime == "python":
        if importlib.util.find_spec("awslambdaric") is None:
            return None, "", "awslambdaric is not installed (run bench setup; see above)"
        return [sys.executable, "-m", "awslambdaric", "app.handler"], os.path.join(FIXTURES, "python"), ""
    node = shutil.which("node")
    entry = node_ric_entry(cache_dir)
    if node is None:
        return None, "", "no `node` on PATH"
    if not os.path.exists(entry):
        return None, "", "aws-lambda-ric is not installed (its npm install failed or was not run)"
    return [node, entry, "index.handler"], os.path.join(FIXTURES, "node"), ""


def _env(api: RuntimeAPI, runtime: str, task_root: str, handler: str) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": task_root,
        "_HANDLER": handler, "AWS_REGION": "local-1", "AWS_DEFAULT_REGION": "local-1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11" if runtime == "python" else "AWS_Lambda_nodejs20.x",
    }


def _spawn(cmd: list[str], env: dict, cwd: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    # The clients poll /next forever by design; SIGKILL is how Lambda ends them too.
    proc.kill()
    proc.wait()


def cold_sampler(runtime: str, cfg):
    """fn() -> ms of one cold start of the client, or None when it is not installed."""
    cmd, root, _ = command(runtime, cfg.cache_dir)
    if cmd is None:
        return None

    def sample() -> float:
        api = RuntimeAPI()
        try:
            rid, pending = api.submit(measure.PAYLOAD)
            t0 = time.perf_counter()
            proc = _spawn(cmd, _env(api, runtime, root, cmd[-1]), root)
            try:
                api.wait(rid, pending)
                return (pending.finished_at - t0) * 1000.0
            finally:
                _kill(proc)
        finally:
            api.close()

    return sample


def run(runtime: str, cfg, cold: list[float] | None = None) -> dict:
    """Figures of the client; `cold` = samples already taken (interleaved by run.py)."""
    cmd, root, reason = command(runtime, cfg.cache_dir)
    if cmd is None:
        return {"unavailable": reason}
    handler = cmd[-1]
    if cold is None:
        sample = cold_sampler(runtime, cfg)
        cold = [sample() for _ in range(cfg.ric_cold_n)]
    api = RuntimeAPI()
    proc = _spawn(cmd, _env(api, runtime, root, handler), root)
    try:
        for _ in range(20):
            api.invoke(measure.PAYLOAD)
        warm = measure.summarize(measure.repeat(lambda: api.invoke(measure.PAYLOAD), cfg.warm_n))
        done = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < cfg.load_s:
            api.invoke(measure.PAYLOAD)
            done += 1
        rps = done / (time.perf_counter() - t0)
        pss = measure.tree_pss_bytes([proc.pid, *measure.descendants(proc.pid)])
    finally:
        _kill(proc)
        api.close()
    c = measure.summarize(cold)
    return {
        "kind": "awslambdaric (PyPI)" if runtime == "python" else "aws-lambda-ric (npm)",
        "cold_p50_ms": c["p50_ms"], "cold_p99_ms": c["p99_ms"],
        "warm_p50_ms": warm["p50_ms"], "warm_p99_ms": warm["p99_ms"],
        "throughput_rps": rps, "cold": c, "warm": warm, "pss_per_env_mb": pss / MiB,
        "note": "throughput of one environment (one invocation at a time, 1 client)",
    }
