"""The benchmark suite: `python bench/run.py [--quick] [--json FILE]`.

Measures, for every runtime this checkout registers (python, nodejs, wasm), cold start, warm
invoke, closed-loop throughput at 1/2/8/32 gRPC clients and PSS per idle environment, and in the
same run the baselines they are judged against (bare gRPC echo, naive spawn, AWS runtime
interface clients, wasmtime). Prints one table with pass/fail target columns and writes JSON.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `python bench/run.py` puts bench/ first, not the repository root
    sys.path.insert(0, ROOT)


def _use_project_venv() -> None:
    """`python bench/run.py` from outside the venv: re-run under the project's venv (which has
    grpcio, wasmtime and the runner installed) rather than failing on the first import."""
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    try:
        import grpc  # noqa: F401

        import runner  # noqa: F401
    except ImportError:
        in_venv = os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(ROOT, ".venv"))
        if os.path.exists(venv_python) and not in_venv:
            os.execv(venv_python, [venv_python, *sys.argv])
        raise SystemExit("bench: grpcio/runner not importable; set up first: make setup "
                         "(or python3 -m venv .venv && .venv/bin/pip install -e '.[test]')")


if __name__ == "__main__":
    _use_project_venv()

from bench import report, setup_baselines  # noqa: E402
from bench.report import FIGURE_KEYS  # noqa: E402

CACHE_DIR = os.path.join(ROOT, "bench", ".cache")
DEFAULT_JSON = os.path.join(ROOT, "bench", "results", "latest.json")


@dataclass
class Config:
    cold_n: int  # cold starts sampled per runtime (and per naive/wasm baseline)
    ric_cold_n: int  # cold starts of the AWS clients (each spawns an interpreter + HTTP server)
    warm_n: int  # sequential warm invocations
    load_s: float  # seconds per concurrency level of the throughput sweep
    idle_envs: int  # environments made idle for the memory figure
    hold_ms: int  # how long each of those invocations holds its environment
    levels: tuple[int, ...] = (1, 2, 8, 32)
    cache_dir: str = CACHE_DIR


QUICK = Config(cold_n=20, ric_cold_n=8, warm_n=300, load_s=1.0, idle_envs=30, hold_ms=600)
FULL = Config(cold_n=100, ric_cold_n=30, warm_n=3000, load_s=5.0, idle_envs=100, hold_ms=2000)


def na_figures() -> dict:
    return {k: None for k in FIGURE_KEYS}


def guarded(label: str, fn, *args) -> dict:
    """Run one measurement; a failure becomes {"error": ...} in the results (and the table)
    instead of losing every other figure of the run."""
    t0 = time.perf_counter()
    print(f"  {label} ...", file=sys.stderr, flush=True, end="")
    try:
        out = fn(*args)
    except Exception as exc:
        print(f" FAILED: {exc!r}", file=sys.stderr, flush=True)
        return {**na_figures(), "error": f"{type(exc).__name__}: {exc}"}
    print(f" {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    if "unavailable" in out:
        out = {**na_figures(), **out}
    return out


def run_suite(cfg: Config, only: list[str] | None = None, setup_notes: dict | None = None) -> dict:
    """All measurements; returns the results dict that is printed and written as JSON."""
    from bench import workloads
    from bench.baselines import grpc_echo
    from bench.servers import ServerProcess

    setup_notes = setup_notes or {}
    registered = workloads.registered_runtimes()
    results: dict = {
        "meta": {
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "commit": _git_commit(), "config": asdict(cfg),
            "registered_runtimes": registered,
            # The machine may be shared: how busy it was is part of every figure's context.
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        },
        "setup": {"unavailable": setup_notes,
                  "versions": setup_baselines.installed_versions(cfg.cache_dir)},
        "runtimes": {}, "baselines": {},
    }
    base = results["baselines"]

    def unavailable_from_setup(key: str) -> dict | None:
        return {**na_figures(), "unavailable": setup_notes[key]} if key in setup_notes else None

    print("measuring (ratios are only meaningful within one run):", file=sys.stderr)
    # One echo server for the whole run: measured alone first, then alongside each runtime.
    with ServerProcess("echo") as echo_srv:
        base["grpc_echo"] = guarded("grpc_echo (floor)", grpc_echo.run, cfg, echo_srv)
        base[grpc_echo.HOP_NAME] = guarded("grpc_echo + process hop", grpc_echo.run_hop, cfg)
        for rt, key in grpc_echo.GUEST_NAMES.items():
            if not only or rt in only:
                base[key] = guarded(f"grpc_echo + {rt} guest", grpc_echo.run_guest, cfg, rt)
        for rt in workloads.ALL_RUNTIMES:
            if only and rt not in only:
                results["runtimes"][rt] = {**na_figures(), "skipped": "not selected (--runtimes)"}
                continue
            session = None
            if rt not in registered:
                results["runtimes"][rt] = {
                    **na_figures(),
                    "skipped": f"runtime {rt!r} is not registered on this checkout "
                               "(runner.environments.backends.default_backends())"}
            else:
                try:
                    session = workloads.RunnerSession(rt, cfg)
                except Exception as exc:
                    results["runtimes"][rt] = {**na_figures(),
                                               "error": f"{type(exc).__name__}: {exc}"}
            try:
                _measure_runtime(rt, cfg, session, results, unavailable_from_setup, echo_srv)
            finally:
                if session is not None:
                    session.close()
    # Workflows (issue 21): engine time per state of a 5-state Express chain vs direct invokes.
    from bench import workflow_bench

    results["workflows"] = guarded("workflows: Express chain vs direct invokes", workflow_bench.run,
                                   100 if cfg.warm_n < 1000 else 300)
    if "engine_ms_per_state" in results["workflows"]:
        print(workflow_bench.table(results["workflows"]), file=sys.stderr)
    results["targets"] = report.targets(results)
    results["meta"]["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["meta"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


def _baseline_specs(rt: str, cfg: Config, unavailable_from_setup) -> list[tuple]:
    """(JSON key, label, unavailable dict or None, cold sampler or None, count, finish) for the
    baselines of `rt`; finish(cold samples) -> figures."""
    from bench.baselines import naive, ric, wasm

    if rt in ("python", "nodejs"):
        ric_key, setup_key = (("awslambdaric", "pypi") if rt == "python"
                              else ("aws_lambda_ric", "aws_lambda_ric"))
        return [
            (f"naive_{rt}", f"naive {rt}", None, naive.cold_sampler(rt), cfg.cold_n,
             lambda cold: naive.run(rt, cfg, cold)),
            (ric_key, ric_key, unavailable_from_setup(setup_key), ric.cold_sampler(rt, cfg),
             cfg.ric_cold_n, lambda cold: ric.run(rt, cfg, cold)),
        ]
    specs = []
    for key, cls, setup_key in (("wasm_compile_instantiate", wasm.CompileInstantiate, None),
                                ("wasmtime_cli", wasm.Cli, "wasmtime_cli")):
        gone = unavailable_from_setup(setup_key) if setup_key else None
        obj = None
        if gone is None:
            try:
                obj = cls(cfg)
                obj.invocation()  # first-use costs (file cache, lazy init) outside the samples
            except Exception as exc:
                gone = {**na_figures(), "unavailable": f"{type(exc).__name__}: {exc}"}
        specs.append((key, key, gone, obj.sample if obj else None, cfg.cold_n,
                      (lambda o: lambda cold: wasm.run(o, cfg, cold))(obj)))
    return specs


def _measure_runtime(rt: str, cfg: Config, session, results: dict, unavailable_from_setup,
                     echo_srv) -> None:
    """Cold starts of the runner and of this runtime's baselines, interleaved round by round
    (so a burst of load on this shared machine hits all of them alike); then the rest."""
    from bench import measure, workloads

    base = results["baselines"]
    specs = _baseline_specs(rt, cfg, unavailable_from_setup)
    samplers = {key: (sampler, n) for key, _, gone, sampler, n, _ in specs
                if gone is None and sampler is not None}
    if session is not None:
        samplers["runner"] = (session.cold_sample, cfg.cold_n)
    print(f"  {rt}: interleaved cold starts of {', '.join(samplers)} ...", file=sys.stderr,
          end="", flush=True)
    t0 = time.perf_counter()
    cold, failed = measure.interleave(samplers)
    print(f" {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    for key, why in failed.items():
        print(f"    {key} failed: {why}", file=sys.stderr)
    if session is not None:
        if "runner" in failed:
            fig = {**na_figures(), "error": failed["runner"]}
        else:
            fig = guarded(f"runner {rt}: warm/throughput (echo alongside)", session.figures,
                          cold["runner"], echo_srv)
        session.close()  # its server and environments must be gone while PSS is read
        if "error" not in fig:
            mem = guarded(f"runner {rt}: idle memory", workloads.idle_memory, rt, cfg)
            if "error" in mem:
                fig["memory_error"] = mem["error"]
            else:
                fig["memory"] = mem
            echo = fig.get("echo_alongside") or base["grpc_echo"]
            if echo.get("warm_p50_ms"):
                fig["warm_overhead_ms"] = fig["warm_p50_ms"] - echo["warm_p50_ms"]
            if echo.get("throughput_rps"):
                fig["throughput_vs_echo"] = fig["throughput_rps"] / echo["throughput_rps"]
        results["runtimes"][rt] = fig
    for key, label, gone, sampler, _, finish in specs:
        if gone is not None:
            base[key] = gone
        elif sampler is None:
            base[key] = guarded(label, finish, None)  # reports why it is unavailable
        elif key in failed:
            base[key] = {**na_figures(), "error": failed[key]}
        else:
            base[key] = guarded(label, finish, cold[key])


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=5).stdout.strip() or None
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer samples and shorter load levels (under 2 minutes)")
    ap.add_argument("--json", metavar="FILE", default=DEFAULT_JSON,
                    help=f"where to write the results (default {os.path.relpath(DEFAULT_JSON, ROOT)})")
    ap.add_argument("--runtimes", help="comma-separated subset of python,nodejs,wasm")
    ap.add_argument("--skip-setup", action="store_true",
                    help="do not install missing baselines (they are reported unavailable)")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    os.makedirs(cfg.cache_dir, exist_ok=True)
    notes = {} if args.skip_setup else setup_baselines.ensure(cfg.cache_dir)
    for name, why in notes.items():
        print(f"setup: baseline {name} unavailable: {why}", file=sys.stderr)
    only = [r.strip() for r in args.runtimes.split(",")] if args.runtimes else None
    known = ("python", "nodejs", "wasm")
    if only and not set(only) <= set(known):
        ap.error(f"--runtimes: unknown {sorted(set(only) - set(known))}; choose from {', '.join(known)}")
    t0 = time.perf_counter()
    results = run_suite(cfg, only, notes)
    results["meta"]["mode"] = "quick" if args.quick else "full"
    results["meta"]["elapsed_s"] = round(time.perf_counter() - t0, 1)
    meta = results["meta"]
    print()
    print(f"Benchmark ({meta['mode']}, {meta['started_utc']}, commit {meta['commit']}, "
          f"{meta['elapsed_s']} s; load average (1 min) {meta['loadavg_before'][0]:.1f} before, "
          f"{meta['loadavg_after'][0]:.1f} after; "
          f"registered runtimes: {', '.join(meta['registered_runtimes'])})")
    print(report.table(results))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nJSON: {args.json}")
    failed = [rt for rt, fig in results["runtimes"].items() if "error" in fig]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
