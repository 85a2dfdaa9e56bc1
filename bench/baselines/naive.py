"""Baseline: naive cold start. A fresh interpreter per environment that imports (or requires)
the handler and answers one event: `python3 -I` for Python, `node` for Node.js. This is what a
runner without any pre-initialisation would pay, and what the Python target's ">=10x faster"
is measured against.

The clock stops when the handler's answer arrives on stdout, not when the process exits: the
same point at which our cold start ends. The process then stays idle (blocked on stdin), which
also gives the idle-memory baseline of one interpreter per environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from bench import measure

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(HERE, "fixtures")
MiB = 1024 ** 2

PY_SCRIPT = (
    "import json, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import app\n"
    "sys.stdout.write(json.dumps(app.handler(json.loads(sys.argv[2]), None)) + '\\n')\n"
    "sys.stdout.flush()\n"
    "sys.stdin.read()\n"
)
NODE_SCRIPT = (
    "const h = require(require('path').join(process.argv[1], 'index.js')).handler;\n"
    "Promise.resolve(h(JSON.parse(process.argv[2]), {})).then((r) => {\n"
    "  process.stdout.write(JSON.stringify(r) + '\\n');\n"
    "  process.stdin.on('data', () => {});\n"
    "});\n"
)


def command(runtime: str) -> list[str] | None:
    payload = measure.PAYLOAD.decode()
    if runtime == "python":
        return [sys.executable, "-I", "-c", PY_SCRIPT, os.path.join(FIXTURES, "python"), payload]
    node = shutil.which("node")
    if node is None:
        return None
    return [node, "-e", NODE_SCRIPT, os.path.join(FIXTURES, "node"), payload]


def _start(cmd: list[str]) -> tuple[subprocess.Popen, float]:
    """Spawn one environment; returns it and the ms until its answer arrived."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    ms = (time.perf_counter() - t0) * 1000.0
    if not line.strip():
        proc.kill()
        proc.wait()
        err = proc.stderr.read().decode(errors="replace")[-500:]
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
        raise RuntimeError(f"naive environment gave no answer: {err}")
    return proc, ms


def _stop(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # the environment's stdin read returns: it exits on its own
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def cold_sampler(runtime: str):
    """fn() -> ms of one naive cold start, or None when the interpreter is missing."""
    cmd = command(runtime)
    if cmd is None:
        return None

    def sample() -> float:
        proc, ms = _start(cmd)
        _stop(proc)  # outside the timed part
        return ms

    return sample


def run(runtime: str, cfg, cold: list[float] | None = None) -> dict:
    """Figures of the naive baseline; `cold` = samples already taken (interleaved by run.py)."""
    cmd = command(runtime)
    label = "python3 -I" if runtime == "python" else "node"
    if cmd is None:
        return {"unavailable": "no `node` on PATH"}
    if cold is None:
        sample = cold_sampler(runtime)
        cold = [sample() for _ in range(cfg.cold_n)]
    # Idle memory: N interpreters alive at once, as N environments would be.
    procs = []
    try:
        for _ in range(cfg.idle_envs):
            procs.append(_start(cmd)[0])
        time.sleep(0.2)
        pss = measure.tree_pss_bytes([p.pid for p in procs]) / len(procs)
    finally:
        for p in procs:
            _stop(p)
    c = measure.summarize(cold)
    return {
        "kind": f"naive spawn ({label})",
        "cold_p50_ms": c["p50_ms"], "cold_p99_ms": c["p99_ms"],
        "warm_p50_ms": None, "warm_p99_ms": None, "throughput_rps": None,
        "cold": c, "pss_per_env_mb": pss / MiB,
        "na": {"warm": "one process per event: a naive environment is never warm",
               "throughput": "one process per event"},
    }
