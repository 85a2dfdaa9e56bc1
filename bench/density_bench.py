"""How many idle environments fit in 4 GiB, and how the figure grows with their number.

    .venv/bin/python bench/density_bench.py [--quick] [--ksm] [--runtime python|nodejs]
                                            [--levels 100,500,1000] [--json FILE]

For each level N, with per-environment namespaces on (decision 068) and, in the same run, off
(the shared zygote sandbox of decision 007, the baseline): N environments of one version are
forked from its zygote, each invoked once and then frozen (the idle freezer of decision 047,
as the pool does 0.1 s after an invocation), and their PSS is summed (smaps_rollup: shared
pages are split among their sharers, so the zygote's image is counted once overall). Printed
per level: PSS per environment, the zygote's own PSS, how many such environments fit in
4 GiB, and the marginal cost of the environments added since the previous level (is it
linear). Issue 24's target: >= 4,000 idle Python environments in 4 GiB. Writes
bench/results/density.json.

--ksm compares RUNNER_KSM=off with =on instead (decision 072), both with per-environment
namespaces. It needs root: for its run it sets the host-wide /sys/kernel/mm/ksm/run to 1 and
makes ksmd scan faster (pages_to_scan, sleep_millisecs), and restores all three afterwards.
KSM merges asynchronously, so the "on" level waits until ksmd has finished two full scans
with the environments idle (a page merges on the second scan that finds it unchanged) and
reports ksm's pages_sharing / pages_shared and the CPU seconds ksmd spent meanwhile.

--runtime nodejs measures Node.js environments instead (issue 24's target: >= 1,000 in 4 GiB):
each is a `node` process launched, initialised, invoked once and frozen, as a pre-started
spare ends up; there is no zygote. With --ksm, "on" marks this process mergeable (what the
server does with RUNNER_KSM=on, decision 080), so the node processes it launches inherit the
mark through execve; "off" unmarks it again before its level.

Each level is built and torn down before the next; the version is deployed with concurrency
N so that the zygote's memory limit allows N live children (zygote_process.zygote_memory_limit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import measure  # noqa: E402
from bench._common import cleanup, request, scratch, version, write_json  # noqa: E402
from runner.confinement import ksm  # noqa: E402
from runner.environments.backends import default_backends  # noqa: E402
from runner.environments.python.forked import innermost  # noqa: E402
from runner.model import FunctionConfig, FunctionVersion  # noqa: E402

SOURCE = """
import json
def handler(event, context):
    return {"ok": True}
"""
GIB4 = 4 * 1024 ** 3
MODES = {"per-env": "on", "shared": "off"}
# --ksm: mode -> (RUNNER_ENV_NAMESPACES, RUNNER_KSM)
KSM_MODES = {"ksm-off": ("on", "off"), "ksm-on": ("on", "on")}
KSM = "/sys/kernel/mm/ksm"
WAKE_SAMPLE = 50
KSM_TUNING = {"pages_to_scan": "20000", "sleep_millisecs": "20"}


def _ksm(name: str) -> str:
    with open(os.path.join(KSM, name)) as f:
        return f.read().strip()


def _set_ksm(name: str, value: str) -> None:
    with open(os.path.join(KSM, name), "w") as f:
        f.write(value)


def _ksmd_cpu_s() -> float:
    """ksmd's CPU time so far (utime + stime of the kernel thread)."""
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if "(ksmd)" in stat:
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _ksm_settle(timeout_s: float = 90.0) -> dict:
    """Wait until a whole full scan of ksmd merged nothing more (at least two full scans after
    the environments went idle: the one under way may have started before they did); what it
    merged and what it cost."""
    cpu0, t0 = _ksmd_cpu_s(), time.perf_counter()
    scans, sharing, stable = int(_ksm("full_scans")), -1, 0
    while stable < 2 and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.2)
        now = int(_ksm("full_scans"))
        if now != scans:
            scans, before, sharing = now, sharing, int(_ksm("pages_sharing"))
            # settled: within 1% of the previous full scan's count (pages also unmerge)
            stable = stable + 1 if abs(sharing - before) <= 0.01 * sharing else 0
    return {"ksm_settle_s": round(time.perf_counter() - t0, 1),
            "ksmd_cpu_s": round(_ksmd_cpu_s() - cpu0, 2),
            "pages_sharing": int(_ksm("pages_sharing")), "pages_shared": int(_ksm("pages_shared"))}


NODE_SOURCE = "exports.handler = async (event, context) => ({ ok: true });\n"


def node_version(root: str, name: str, n: int) -> FunctionVersion:
    code = os.path.join(root, name)
    os.makedirs(code, exist_ok=True)
    with open(os.path.join(code, "index.js"), "w") as f:
        f.write(NODE_SOURCE)
    os.chmod(code, 0o755)
    return FunctionVersion(name, "$LATEST", 1, FunctionConfig(
        "nodejs", "index.handler", memory_mb=128, concurrency=n, timeout_s=60), "bench", code)


def _build_idle(make, n: int, envs: list) -> tuple[list[float], float]:
    """n environments from make(), each started, invoked once and frozen (as the pool leaves
    an idle one); appended to `envs`, which the caller destroys. (cold ms each, build s)."""
    cold_ms = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        env = make()
        envs.append(env)
        env.start()
        out = env.invoke(request({}))
        assert out.error is None, out.error
        cold_ms.append((time.perf_counter() - t) * 1e3)  # launch or fork, set-up, first invoke
        env.freeze()
    return cold_ms, time.perf_counter() - t0


def _row(envs: list, pids: list[int], zygote_pids: list[int], mode: str, cold_ms: list[float],
         built_s: float) -> dict:
    """PSS of `pids` once idle (and, for ksm-on, merged), then the first invocation of idle
    environments: thaw + invoke, as the pool does (with KSM its writes to merged pages are
    copy-on-write faults)."""
    n = len(envs)
    time.sleep(0.5)  # let the freezes settle
    merged = _ksm_settle() if mode == "ksm-on" else {}
    pss = measure.tree_pss_bytes(pids)
    zpss = measure.tree_pss_bytes(zygote_pids)
    wake_ms = []
    for env in envs[:WAKE_SAMPLE]:
        t = time.perf_counter()
        env.thaw()
        out = env.invoke(request({}))
        wake_ms.append((time.perf_counter() - t) * 1e3)
        assert out.error is None, out.error
    merged["wake_invoke_p50_ms"] = round(sorted(wake_ms)[len(wake_ms) // 2], 3)
    merged["cold_start_p50_ms"] = round(sorted(cold_ms)[len(cold_ms) // 2], 3)
    return {"n": n, "pss_total_mb": pss / 1e6, "pss_per_env_mb": pss / n / 1e6,
            "zygote_pss_mb": zpss / 1e6, "fit_in_4gib": int(GIB4 / (pss / n)),
            "build_s": round(built_s, 1), **merged}


def node_level(root: str, mode: str, n: int) -> dict:
    """As level() for Node.js: n launched, initialised, invoked-once, frozen node processes."""
    os.environ["RUNNER_KSM"] = KSM_MODES.get(mode, ("", "off"))[1]
    if os.environ["RUNNER_KSM"] == "off":
        ksm.set_mergeable(False)  # an earlier "on" level marked this process
    backends = default_backends(os.path.join(root, f"envs-{mode}-{n}"))
    if "nodejs" not in backends:
        raise SystemExit("--runtime nodejs: no `node` binary on this host")
    if os.environ["RUNNER_KSM"] == "on" and not ksm.is_marked():
        raise SystemExit("RUNNER_KSM=on did not mark this process (see the warning above)")
    v = node_version(root, f"density-node-{mode}-{n}", n)
    envs: list = []
    try:
        cold_ms, built_s = _build_idle(lambda: backends["nodejs"].create(v), n, envs)
        # An environment is bwrap's two processes and node under them: count all three.
        pids = [p for e in envs for p in (e.pid, *measure.descendants(e.pid))]
        return _row(envs, pids, [], mode, cold_ms, built_s)
    finally:
        for env in envs:
            env.destroy()
        for b in backends.values():
            b.close()


def level(root: str, mode: str, n: int) -> dict:
    if mode in KSM_MODES:
        os.environ["RUNNER_ENV_NAMESPACES"], os.environ["RUNNER_KSM"] = KSM_MODES[mode]
    else:
        os.environ["RUNNER_ENV_NAMESPACES"] = MODES[mode]
    backends = default_backends(os.path.join(root, f"envs-{mode}-{n}"))
    os.makedirs(os.path.join(root, f"envs-{mode}-{n}"), exist_ok=True)
    py = backends["python"]
    v = version(root, f"density-{mode}-{n}", SOURCE, memory_mb=128, concurrency=n)
    envs: list = []
    try:
        py.prewarm(v)
        zygote, _ = py.zygote(v)
        assert zygote.env_namespaces == (mode != "shared"), "switch not honoured"
        cold_ms, built_s = _build_idle(lambda: py.create(v), n, envs)
        return _row(envs, [e.pid for e in envs], [innermost(zygote.proc.pid).pid], mode,
                    cold_ms, built_s)
    finally:
        for env in envs:
            env.destroy()
        for b in backends.values():
            b.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/density_bench.py")
    ap.add_argument("--quick", action="store_true", help="levels 50,100")
    ap.add_argument("--levels", default="100,500,1000")
    ap.add_argument("--json", default=None)
    ap.add_argument("--runtime", choices=("python", "nodejs"), default="python")
    ap.add_argument("--ksm", action="store_true",
                    help="RUNNER_KSM off vs on (root: sets /sys/kernel/mm/ksm for the run, restores it)")
    args = ap.parse_args(argv)
    node = args.runtime == "nodejs"
    # Node has no zygote, so per-environment namespaces do not apply: without --ksm its one
    # mode is the plain launch.
    modes = KSM_MODES if args.ksm else ({"per-env": "on"} if node else MODES)
    measure_level = node_level if node else level
    saved = {k: _ksm(k) for k in ("run", *KSM_TUNING)} if args.ksm else {}
    levels = [50, 100] if args.quick else [int(x) for x in args.levels.split(",")]
    root = scratch()
    results: dict = {m: [] for m in modes}
    try:
        if args.ksm:
            print(f"KSM for this run: run=1 {KSM_TUNING} (was {saved}; restored afterwards)")
            for k, value in KSM_TUNING.items():
                _set_ksm(k, value)
            _set_ksm("run", "1")
        for n in levels:
            for mode in modes:  # alternate, so both modes see the same stretch of load
                results[mode].append(measure_level(root, mode, n))
    finally:
        cleanup(root)
        for k, value in saved.items():
            _set_ksm(k, value)
    print(f"{'mode':8} {'N':>5} {'PSS/env MB':>11} {'zygote MB':>10} {'fit 4 GiB':>10} "
          f"{'marginal MB/env':>16} {'build s':>8} {'cold ms p50':>12} {'wake ms p50':>12}")
    for mode, rows in results.items():
        prev = None
        for r in rows:
            marginal = "" if prev is None else \
                f"{(r['pss_total_mb'] - prev['pss_total_mb']) / (r['n'] - prev['n']):.2f}"
            r["marginal_mb_per_env"] = float(marginal) if marginal else None
            ksm = (f"  ksm: sharing {r['pages_sharing']} shared {r['pages_shared']} pages, "
                   f"ksmd {r['ksmd_cpu_s']} CPU s over {r['ksm_settle_s']} s") if "pages_sharing" in r else ""
            print(f"{mode:8} {r['n']:5d} {r['pss_per_env_mb']:11.2f} {r['zygote_pss_mb']:10.2f} "
                  f"{r['fit_in_4gib']:10d} {marginal:>16} {r['build_s']:8.1f} "
                  f"{r['cold_start_p50_ms']:12.2f} {r['wake_invoke_p50_ms']:12.2f}{ksm}")
            prev = r
    best = max(r["fit_in_4gib"] for r in results["ksm-on" if args.ksm else "per-env"])
    target = 1000 if node else 4000
    print(f"idle {'Node.js' if node else 'Python'} environments in 4 GiB "
          f"({'' if node else 'per-env namespaces, '}freezer on{', KSM on' if args.ksm else ''}): "
          f"{best} (issue 24 target >= {target}: {'PASS' if best >= target else 'FAIL'})")
    name = f"density{'-node' if node else ''}{'-ksm' if args.ksm else ''}.json"
    print(f"wrote {write_json(name, results, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
