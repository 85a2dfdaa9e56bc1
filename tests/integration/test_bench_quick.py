"""Smoke test of the benchmark suite (bench/): its measurement functions run end to end with
tiny sample counts and produce the documented JSON. Behaviour only: no timing is asserted, since
this machine is shared and any threshold would be a coin toss."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import measure, report  # noqa: E402
from bench.baselines.runtime_api import RuntimeAPI  # noqa: E402
from bench.run import Config, run_suite  # noqa: E402
from bench.workloads import registered_runtimes  # noqa: E402

KEYS = ("cold_p50_ms", "cold_p99_ms", "warm_p50_ms", "warm_p99_ms", "throughput_rps")
# Baselines that need no registry install: they must always produce figures.
ALWAYS_AVAILABLE = {"grpc_echo": ("warm_p50_ms", "warm_p99_ms", "throughput_rps"),
                    "grpc_echo_hop": ("warm_p50_ms", "warm_p99_ms", "throughput_rps"),
                    "grpc_echo_python_guest": ("warm_p50_ms", "warm_p99_ms", "throughput_rps"),
                    "naive_python": ("cold_p50_ms", "cold_p99_ms"),
                    "wasm_compile_instantiate": ("cold_p50_ms", "cold_p99_ms", "throughput_rps")}


def positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cache = tmp_path_factory.mktemp("bench-cache")
    cfg = Config(cold_n=3, ric_cold_n=2, warm_n=5, load_s=0.2, idle_envs=3, hold_ms=300,
                 levels=(1, 2), cache_dir=str(cache))
    out = run_suite(cfg)
    return json.loads(json.dumps(out))  # what a reader of the JSON file gets


def test_every_registered_runtime_has_positive_figures(results):
    registered = registered_runtimes()
    assert "python" in registered
    for rt in ("python", "nodejs", "wasm"):
        fig = results["runtimes"][rt]
        assert set(KEYS) <= set(fig), (rt, fig)
        if rt in registered:
            assert "error" not in fig, fig.get("error")
            for k in KEYS:
                assert positive(fig[k]), (rt, k, fig[k])
            assert fig["cold"]["n"] == 3 and fig["warm"]["n"] == 5
            assert set(fig["throughput"]) == {"1", "2"}
            assert all(lvl["cold_starts"] >= 0 for lvl in fig["throughput"].values())
            # The floor measured alongside this runtime, which the targets compare against.
            alongside = fig["echo_alongside"]
            assert positive(alongside["warm_p50_ms"]) and positive(alongside["throughput_rps"])
            assert alongside["warm"]["n"] == 5 and set(alongside["throughput"]) == {"1", "2"}
            mem = fig["memory"]
            assert mem["idle_envs"] >= 1 and positive(mem["pss_per_env_mb"])
            assert mem["fit_in_4gib"] >= 1
        else:
            # Not silently dropped: the skip carries its reason into the JSON and the table.
            assert "not registered" in fig["skipped"]
            assert all(fig[k] is None for k in KEYS)


def test_meta_records_how_busy_the_machine_was(results):
    for key in ("loadavg_before", "loadavg_after"):
        load = results["meta"][key]
        assert len(load) == 3 and all(isinstance(x, (int, float)) and x >= 0 for x in load), key


def test_baselines_have_the_documented_keys(results):
    base = results["baselines"]
    for name, must in ALWAYS_AVAILABLE.items():
        assert "error" not in base[name], base[name].get("error")
        for k in must:
            assert positive(base[name][k]), (name, k)
    for name, fig in base.items():
        assert set(KEYS) <= set(fig), name
        for k in KEYS:
            # Each figure is a measurement, or null with the reason it does not apply or
            # could not be measured.
            assert positive(fig[k]) or (fig[k] is None and (
                fig.get("na") or fig.get("unavailable") or fig.get("error"))), (name, k, fig)


def test_targets_and_table_cover_the_runtimes(results):
    ts = results["targets"]
    py = [t for t in ts if t["runtime"] == "python"]
    assert {t["target"].split()[0] for t in py} >= {"cold", "warm", "peak", "idle"}
    assert all(isinstance(t["pass"], bool) for t in py)
    text = report.table(results)
    assert "gRPC echo (floor)" in text and "naive spawn (python3 -I)" in text
    assert "gRPC echo + process hop" in text and "floor of any out-of-process guest" in text
    assert "gRPC echo + Python guest" in text and "floor of a runner with our Python guests" in text
    if "nodejs" in registered_runtimes():
        node_floor = results["baselines"]["grpc_echo_node_guest"]
        assert all(positive(node_floor[k]) for k in ("warm_p50_ms", "warm_p99_ms", "throughput_rps"))
        assert "floor of a runner with our Node guests" in text
    for rt in ("nodejs", "wasm"):
        if rt not in registered_runtimes():
            assert f"SKIPPED: runtime '{rt}' is not registered" in text


def test_load_levels_carry_cpu_per_invocation(results):
    """Every load level of the runner, the echo alongside it and the floors says how much CPU
    the server's process tree and the client spent per invocation (what bounds the ratios)."""
    sweeps = [results["baselines"][k]["throughput"] for k in
              ("grpc_echo", "grpc_echo_hop", "grpc_echo_python_guest")]
    for rt in registered_runtimes():
        fig = results["runtimes"][rt]
        sweeps += [fig["throughput"], fig["echo_alongside"]["throughput"]]
    server_total = client_total = 0.0
    for sweep in sweeps:
        for level in sweep.values():
            assert level["server_cpu_ms_per_inv"] >= 0 and level["client_cpu_ms_per_inv"] >= 0
            # The server process is part of its tree (equal within float rounding).
            assert 0 <= level["server_process_cpu_ms_per_inv"] <= level["server_cpu_ms_per_inv"] + 1e-9
            server_total += level["server_cpu_ms_per_inv"]
            client_total += level["client_cpu_ms_per_inv"]
    # CPU is counted in clock ticks: one level may read 0, all of them together cannot.
    assert server_total > 0 and client_total > 0
    assert "CPU ms/inv: server " in report.table(results)


def test_cpu_split_separates_guest_processes(results):
    """The bare echo has no guests: its process is its whole tree. The Python-guest floor's
    and the Python runner's guests are processes of their own, so some CPU is the guests'
    (summed over both, since a short window may hold under a clock tick of one guest's CPU)."""
    def guest_ms(sweep):
        return sum(v["server_cpu_ms_per_inv"] - v["server_process_cpu_ms_per_inv"] for v in sweep.values())

    assert guest_ms(results["baselines"]["grpc_echo"]["throughput"]) == pytest.approx(0.0, abs=1e-9)
    assert (guest_ms(results["baselines"]["grpc_echo_python_guest"]["throughput"])
            + guest_ms(results["runtimes"]["python"]["throughput"])) > 0
    assert "+ guests " in report.table(results)


def test_tree_cpu_counts_busy_descendants():
    # An idle child whose own child burns 0.5 s of CPU and then sleeps: the CPU shows in the
    # child's tree, though the child itself used next to none.
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys\n"
                              f"p = subprocess.Popen([sys.executable, '-c', {busy!r}])\n"
                              "input()\np.kill()\np.wait()"], stdin=subprocess.PIPE)
    try:
        before = measure.tree_cpu_s(child.pid)
        assert child.pid in before
        deadline = time.monotonic() + 20
        while measure.cpu_between(before, measure.tree_cpu_s(child.pid)) < 0.25:
            assert time.monotonic() < deadline, "the grandchild's CPU never showed in the tree"
            time.sleep(0.02)
        own = measure.tree_cpu_s(child.pid)[child.pid] - before[child.pid]
        assert own < 0.25  # so the CPU counted was the grandchild's
    finally:
        child.communicate(b"\n", timeout=10)
    assert measure.tree_cpu_s(child.pid) == {}  # gone: nothing to count


def test_burst_bench_compares_the_pools_on_both_servers(tmp_path):
    from bench import burst_bench

    out = tmp_path / "burst.json"
    assert burst_bench.main(["--rounds", "1", "--window", "0.2", "--idle", "0.1",
                             "--json", str(out)]) == 0
    servers = json.loads(out.read_text())["servers"]
    assert set(servers) == {"echo", "runner"}
    for pools in servers.values():
        assert set(pools) == {"plain", "renewing"}
        for figures in pools.values():
            assert all(positive(figures[k]) for k in ("before_rps", "burst_rps", "after_rps"))
            assert figures["after_over_before"] == pytest.approx(
                figures["after_rps"] / figures["before_rps"])


def test_percentile_is_nearest_rank():
    data = [float(x) for x in range(1, 101)]
    s = measure.summarize(list(reversed(data)))
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["n"]) == (50.0, 95.0, 99.0, 100)
    assert measure.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        measure.percentile([], 50)


def test_runtime_api_speaks_the_lambda_protocol():
    api = RuntimeAPI()
    try:
        rid, pending = api.submit(b'{"x": 1}')
        base = f"http://{api.address}/2018-06-01/runtime"
        with urllib.request.urlopen(f"{base}/invocation/next", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read()) == {"x": 1}
            assert r.headers["Lambda-Runtime-Aws-Request-Id"] == rid
            assert int(r.headers["Lambda-Runtime-Deadline-Ms"]) > 0
            assert r.headers["Lambda-Runtime-Invoked-Function-Arn"].startswith("arn:aws:lambda:")
        post = urllib.request.Request(f"{base}/invocation/{rid}/response", data=b'{"ok": true}',
                                      method="POST")
        with urllib.request.urlopen(post, timeout=5) as r:
            assert r.status == 202
        assert api.wait(rid, pending) == b'{"ok": true}'
        rid2, pending2 = api.submit(b"{}")
        urllib.request.urlopen(f"{base}/invocation/next", timeout=5).close()
        err = urllib.request.Request(f"{base}/invocation/{rid2}/error", data=b'{"errorType": "E"}',
                                     method="POST",
                                     headers={"Lambda-Runtime-Function-Error-Type": "E"})
        urllib.request.urlopen(err, timeout=5).close()
        with pytest.raises(Exception, match="E"):
            api.wait(rid2, pending2)
    finally:
        api.close()


def test_guest_bench_measures_each_guest_beside_the_peer(tmp_path):
    from bench import guest_bench

    out = tmp_path / "guests.json"
    assert guest_bench.main(["--n", "30", "--rounds", "1", "--json", str(out)]) == 0
    guests = json.loads(out.read_text())["guests"]
    expected = {"peer", "python"} | ({"nodejs"} if "nodejs" in registered_runtimes() else set())
    assert set(guests) == expected
    for figures in guests.values():
        assert positive(figures["p50_us"]) and positive(figures["p99_us"])
        assert figures["cpu_us_per_invocation"] >= 0
