"""Targets and the on-screen table. Everything here reads the results dict run.py builds; no
figure is computed here except ratios between two figures of the same run."""

from __future__ import annotations

FIGURE_KEYS = ("cold_p50_ms", "cold_p99_ms", "warm_p50_ms", "warm_p99_ms", "throughput_rps")
# Runtime -> (its naive-spawn baseline, its AWS runtime interface client baseline).
RUNTIME_BASELINES = {
    "python": ("naive_python", "awslambdaric"),
    "nodejs": ("naive_nodejs", "aws_lambda_ric"),
    "wasm": ("wasm_compile_instantiate", "wasmtime_cli"),
}
# The floor each runtime's peak is also shown against (bench/servers.py: the echo forwarding every
# call to one of our guests, with no host work); wasm runs in the server, so its floor is the echo.
GUEST_FLOORS = {"python": "grpc_echo_python_guest", "nodejs": "grpc_echo_node_guest"}
COLD_TARGET_MS = {"python": 5.0, "nodejs": 10.0, "wasm": 2.0}
WARM_TARGET_MS = 1.0
WARM_OVERHEAD_TARGET_MS = 0.4
# Issue 24's tighter targets, judged in the same run beside the ones above: a cold start within
# this much of the runtime's warm p50 (wasm: an absolute cold p50), and warm overhead over the
# echo measured alongside.
COLD_OVER_WARM_TARGET_MS = {"python": 0.3, "nodejs": 1.5}
WASM_COLD_TIGHT_TARGET_MS = 0.8
WARM_OVERHEAD_TIGHT_TARGET_MS = 0.2
THROUGHPUT_FRACTION = 0.70
PYTHON_NAIVE_SPEEDUP = 10.0
PYTHON_IDLE_IN_4GIB = 1000


def _num(d: dict | None, key: str):
    v = (d or {}).get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def targets(results: dict) -> list[dict]:
    """One record per target: what it asks, what was measured, pass (True/False) or None when
    it cannot be judged (runtime or baseline missing), with the reason."""
    out = []
    for rt, fig in results["runtimes"].items():
        # The echo measured alongside this runtime (same load), else the floor's own run.
        echo = fig.get("echo_alongside") or results["baselines"].get("grpc_echo", {})
        naive_name = RUNTIME_BASELINES[rt][0]
        naive = results["baselines"].get(naive_name, {})
        skipped = fig.get("skipped") or fig.get("error")

        def add(name: str, measured, ok, unit: str = "", why: str = "") -> None:
            if skipped:
                out.append({"runtime": rt, "target": name, "measured": None, "pass": None,
                            "why": skipped})
            elif measured is None:
                out.append({"runtime": rt, "target": name, "measured": None, "pass": None,
                            "why": why or "figure missing"})
            else:
                out.append({"runtime": rt, "target": name, "measured": measured, "unit": unit,
                            "pass": bool(ok)})

        cold = _num(fig, "cold_p50_ms")
        add(f"cold start p50 < {COLD_TARGET_MS[rt]:g} ms", cold,
            cold is not None and cold < COLD_TARGET_MS[rt], "ms")
        if rt == "python":
            n = _num(naive, "cold_p50_ms")
            ratio = n / cold if n and cold else None
            add(f"cold start >= {PYTHON_NAIVE_SPEEDUP:g}x faster than naive spawn", ratio,
                ratio is not None and ratio >= PYTHON_NAIVE_SPEEDUP, "x",
                "naive baseline unavailable")
        warm = _num(fig, "warm_p50_ms")
        if rt in COLD_OVER_WARM_TARGET_MS:
            gap = cold - warm if cold is not None and warm is not None else None
            bound = COLD_OVER_WARM_TARGET_MS[rt]
            add(f"cold p50 within {bound:g} ms of warm p50", gap,
                gap is not None and gap <= bound, "ms")
        else:
            add(f"cold p50 <= {WASM_COLD_TIGHT_TARGET_MS:g} ms", cold,
                cold is not None and cold <= WASM_COLD_TIGHT_TARGET_MS, "ms")
        add(f"warm invoke p50 < {WARM_TARGET_MS:g} ms", warm,
            warm is not None and warm < WARM_TARGET_MS, "ms")
        e = _num(echo, "warm_p50_ms")
        over = warm - e if warm is not None and e is not None else None
        for limit in (WARM_OVERHEAD_TARGET_MS, WARM_OVERHEAD_TIGHT_TARGET_MS):
            add(f"warm p50 <= {limit:g} ms over bare gRPC echo", over,
                over is not None and over <= limit, "ms", "echo baseline missing")
        rps, erps = _num(fig, "throughput_rps"), _num(echo, "throughput_rps")
        frac = rps / erps if rps and erps else None
        add(f"peak throughput >= {THROUGHPUT_FRACTION:.0%} of bare gRPC echo's", frac,
            frac is not None and frac >= THROUGHPUT_FRACTION, "x", "echo baseline missing")
        if rt == "python":
            fit = _num(fig.get("memory"), "fit_in_4gib")
            add(f"idle environments in 4 GiB >= {PYTHON_IDLE_IN_4GIB}", fit,
                fit is not None and fit >= PYTHON_IDLE_IN_4GIB, "", "memory figure missing")
    return out


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _verdict(t: dict | None) -> tuple[str, str]:
    if t is None:
        return "", ""
    if t["pass"] is None:
        return t["target"], "n/a"
    return t["target"], "PASS" if t["pass"] else "FAIL"


def _measured(t: dict) -> str:
    v, unit = t["measured"], t.get("unit", "")
    if v is None:
        return ""
    return f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _cpu(d: dict) -> str:
    """CPU per invocation in a load window (measure.LoadResult), or "" when not measured. When
    the server's guests run in processes of their own, the server's share is split into its
    own process and the guests: which side of the hop a gap is on."""
    srv, cli = d.get("server_cpu_ms_per_inv"), d.get("client_cpu_ms_per_inv")
    if srv is None or cli is None:
        return ""
    proc = d.get("server_process_cpu_ms_per_inv")
    split = ""
    if proc is not None and srv - proc >= 0.005:  # under a clock tick per 200 calls: none
        split = f" (process {proc:.2f} + guests {srv - proc:.2f})"
    return f"CPU ms/inv: server {srv:.2f}{split}, client {cli:.2f}"


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def table(results: dict) -> str:
    hdr = ["runtime", "system", "metric", "p50 ms", "p95 ms", "p99 ms", "inv/s", "vs baseline / note",
           "target", "result"]
    rows: list[list[str]] = []
    base = results["baselines"]
    echo = base.get("grpc_echo", {})
    tlist = targets(results)

    def tfind(rt: str, prefix: str) -> dict | None:
        return next((t for t in tlist if t["runtime"] == rt and t["target"].startswith(prefix)), None)

    def lat(d: dict | None) -> list[str]:
        d = d or {}
        return [_f(d.get("p50_ms")), _f(d.get("p95_ms")), _f(d.get("p99_ms"))]

    def baseline_rows(rt: str, name: str, section: str) -> None:
        if name not in base:  # its runtime was not selected with --runtimes
            return
        b = base[name]
        label = b.get("label") or b.get("kind", name)
        if "unavailable" in b or "error" in b:
            rows.append([rt, name, section, "-", "-", "-", "-",
                         f"UNAVAILABLE: {b.get('unavailable') or b.get('error')}", "", ""])
            return
        if section == "cold start":
            rows.append([rt, label, section, *lat(b.get("cold")), "-", "", "", ""])
        elif section == "warm invoke":
            if b.get("warm") is None:
                rows.append([rt, label, section, "-", "-", "-", "-",
                             "n/a: " + b.get("na", {}).get("warm", ""), "", ""])
            else:
                rows.append([rt, label, section, *lat(b.get("warm")), "-",
                             "Runtime API round trip, no gRPC edge", "", ""])
        elif section == "throughput":
            if b.get("throughput_rps") is not None:
                rows.append([rt, label, "1 client", "-", "-", "-", _f(b["throughput_rps"], 0),
                             b.get("note", ""), "", ""])
        elif section == "memory" and b.get("pss_per_env_mb") is not None:
            rows.append([rt, label, "idle env PSS", "-", "-", "-", "-",
                         f"{b['pss_per_env_mb']:.2f} MB/env", "", ""])

    for lvl, e in (echo.get("throughput") or {}).items():
        rows.append(["-", "gRPC echo (floor)", f"{lvl} client(s)", *lat(e), _f(e["throughput_rps"], 0),
                     _cpu(e), "", ""])
    rows.append(["-", "gRPC echo (floor)", "warm invoke", *lat(echo.get("warm")), "-", "", "", ""])
    floors = (("grpc_echo_hop", "gRPC echo + process hop", "the floor of any out-of-process guest"),
              ("grpc_echo_python_guest", "gRPC echo + Python guest",
               "the floor of a runner with our Python guests"),
              ("grpc_echo_node_guest", "gRPC echo + Node guest",
               "the floor of a runner with our Node guests"))
    for key, label, meaning in floors:
        hop = base.get(key) or {}
        if hop.get("error") or hop.get("unavailable"):
            why = f"ERROR: {hop['error']}" if hop.get("error") else f"unavailable: {hop['unavailable']}"
            rows.append(["-", label, "all", "-", "-", "-", "-", why, "", ""])
            continue
        if not hop:
            continue
        floor = echo.get("throughput") or {}
        for lvl, e in (hop.get("throughput") or {}).items():
            ratio = ""
            if floor.get(lvl, {}).get("throughput_rps"):
                ratio = f"{e['throughput_rps'] / floor[lvl]['throughput_rps']:.0%} of echo's inv/s"
            rows.append(["-", label, f"{lvl} client(s)", *lat(e), _f(e["throughput_rps"], 0),
                         _join(ratio, _cpu(e)), "", ""])
        if hop.get("throughput_rps") and echo.get("throughput_rps"):
            # The ceiling a runner with these guests could reach with no host work at all: the
            # runner's peak row below is judged against the echo, this says how much of the gap
            # the process hop and the guest alone take (docs/benchmarks.md, "what bounds them").
            rows.append(["-", label, "peak inv/s", "", "", "", _f(hop["throughput_rps"], 0),
                         f"{hop['throughput_rps'] / echo['throughput_rps']:.2f}x of echo's peak: "
                         "a runner's ceiling with these guests", "", ""])
        extra = ""
        if hop.get("warm_p50_ms") is not None and echo.get("warm_p50_ms") is not None:
            extra = f"+{hop['warm_p50_ms'] - echo['warm_p50_ms']:.2f} ms over the echo: {meaning}"
        rows.append(["-", label, "warm invoke", *lat(hop.get("warm")), "-", extra, "", ""])
    for rt, fig in results["runtimes"].items():
        naive_name, ric_name = RUNTIME_BASELINES[rt]
        rows.append(None)
        if fig.get("skipped") or fig.get("error"):
            why = f"SKIPPED: {fig['skipped']}" if fig.get("skipped") else f"ERROR: {fig['error']}"
            rows.append([rt, "runner", "all", "-", "-", "-", "-", why, "", ""])
        else:
            naive_p50 = _num(base.get(naive_name), "cold_p50_ms")
            cold_note = f"init {_f(fig['init']['p50_ms'])} ms in guest (p50)"
            if naive_p50:
                who = "naive's" if rt != "wasm" else "compile+inst.'s"
                cold_note += f"; {naive_p50 / fig['cold_p50_ms']:.2f}x {who} speed"
            t = tfind(rt, "cold start p50")
            rows.append([rt, "runner", "cold start", *lat(fig["cold"]), "-", cold_note,
                         *_verdict(t)])
            if rt == "python":
                t = tfind(rt, "cold start >=")
                rows.append([rt, "runner", "cold vs naive", "", "", "", "", _measured(t), *_verdict(t)])
            t = tfind(rt, "cold p50 within") or tfind(rt, "cold p50 <=")
            rows.append([rt, "runner", "cold over warm" if rt != "wasm" else "cold (tight)",
                         "", "", "", "", _measured(t), *_verdict(t)])
        for name in (naive_name, ric_name):
            baseline_rows(rt, name, "cold start")
        ref = fig.get("echo_alongside") or echo
        if not (fig.get("skipped") or fig.get("error")):
            over = fig["warm_p50_ms"] - ref["warm_p50_ms"] if ref.get("warm_p50_ms") else None
            rows.append([rt, "runner", "warm invoke", *lat(fig["warm"]), "-",
                         f"{over:+.2f} ms over gRPC echo" if over is not None else "",
                         *_verdict(tfind(rt, "warm invoke p50"))])
            if fig.get("echo_alongside"):
                rows.append([rt, "gRPC echo, alongside", "warm invoke", *lat(ref["warm"]), "-",
                             "blocks of 50 calls alternated with the runner's", "", ""])
            for limit in (WARM_OVERHEAD_TARGET_MS, WARM_OVERHEAD_TIGHT_TARGET_MS):
                t = tfind(rt, f"warm p50 <= {limit:g} ms")
                rows.append([rt, "runner", "warm overhead", "", "", "", "", _measured(t),
                             *_verdict(t)])
        for name in (naive_name, ric_name):
            baseline_rows(rt, name, "warm invoke")
        if not (fig.get("skipped") or fig.get("error")):
            for lvl, r in fig["throughput"].items():
                e = (ref.get("throughput") or {}).get(lvl)
                ratio = f"{r['throughput_rps'] / e['throughput_rps']:.0%} of echo's inv/s" if e else ""
                if fig.get("echo_alongside") and e:
                    rows.append([rt, "gRPC echo, alongside", f"{lvl} client(s)", *lat(e),
                                 _f(e["throughput_rps"], 0),
                                 _join("run just before the runner's", _cpu(e)), "", ""])
                if r.get("cold_starts"):
                    ratio += f"; {r['cold_starts']} cold start(s) in the window"
                rows.append([rt, "runner", f"{lvl} client(s)", *lat(r), _f(r["throughput_rps"], 0),
                             _join(ratio, _cpu(r)), "", ""])
            t = tfind(rt, "peak throughput")
            note = _measured(t) + " of echo's peak"
            floor = base.get(GUEST_FLOORS.get(rt, "")) or {}
            if floor.get("throughput_rps") and fig.get("throughput_rps"):
                note += (f"; {fig['throughput_rps'] / floor['throughput_rps']:.2f}x of the "
                         "echo + guest floor's")
            rows.append([rt, "runner", "peak inv/s", "", "", "", _f(fig["throughput_rps"], 0),
                         note, *_verdict(t)])
        for name in (naive_name, ric_name):
            baseline_rows(rt, name, "throughput")
        mem = fig.get("memory") or {}
        if mem.get("pss_per_env_mb") is not None:
            t = tfind(rt, "idle environments")
            rows.append([rt, "runner", "idle env PSS", "-", "-", "-", "-",
                         f"{mem['pss_per_env_mb']:.2f} MB/env ({mem['method']}); "
                         f"{mem['fit_in_4gib']} fit in 4 GiB", *_verdict(t)])
        elif fig.get("memory_error"):
            rows.append([rt, "runner", "idle env PSS", "-", "-", "-", "-",
                         f"ERROR: {fig['memory_error']}", "", ""])
        for name in (naive_name, ric_name):
            baseline_rows(rt, name, "memory")
    widths = [max(len(hdr[i]), *(len(r[i]) for r in rows if r)) for i in range(len(hdr))]
    widths[7] = min(widths[7], 62)  # longer notes overflow rather than being cut

    def fmt(r: list[str]) -> str:
        cells = [r[i].ljust(widths[i]) if i < 3 or i >= 7 else r[i].rjust(widths[i])
                 for i in range(len(hdr))]
        return "  ".join(cells).rstrip()

    sep = "-" * len(fmt(hdr))
    lines = [fmt(hdr), sep]
    lines += [sep if r is None else fmt(r) for r in rows]
    return "\n".join(lines)
