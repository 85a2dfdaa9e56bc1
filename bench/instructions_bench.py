"""Instructions per warm invocation, counted by valgrind: `python bench/instructions_bench.py`.

Timing figures on this shared 2-vCPU host move by +-30% with whatever else runs; throughput
there follows CPU per invocation. This bench counts instead of timing: each server kind of
bench/servers.py (the bare gRPC echo, the echo with our Python guest behind it, the runner with
the bench's Python fixture deployed) runs under `valgrind --tool=callgrind`, a client outside
valgrind (this process) drives warm invocations one at a time, and callgrind counts the
instructions (Ir) the server process executes. Instruction counts do not depend on the load
of the machine: two runs agree to within a few per cent, so host work that costs a few
microseconds shows.

Method (per server kind):

* start the server under callgrind, wait for its port, deploy the fixture (runner), make
  `--warmup` invocations (the first is the runner's cold start);
* windows, each opened by zeroing the process's counters (`callgrind_control -z PID`) and
  closed by dumping them (`callgrind_control -d PID`): an idle window of `--idle` seconds (the
  server's background threads: reaper, metrics flush, polling), then N1 and N2 invocations
  (default 200 and 1000), `--rounds` times;
* per invocation = (Ir(N2) - Ir(N1) - idle Ir/s x (t2 - t1)) / (N2 - N1): what is constant per
  window (zeroing, dumping) cancels, and the background threads' rate is taken out for the
  difference of the windows' durations (they are slower under valgrind: ~20-50x).

Guests: the echo-guest's guests are spawned with a plain Popen, so with `--trace-children=yes`
they run under callgrind too and are counted the same way (its peers are cut to
`--guest-peers`, since each one starts under valgrind). The runner's guests are forked from a
zygote inside bubblewrap, with a seccomp filter, rlimits and cgroups, where valgrind cannot
follow; they run natively and are not counted (the server process is; its guest is the same
bootstrap as the echo-guest's). Instructions in the kernel (system calls) are not counted at
all, by any row.

Output: a table (per system: Ir per invocation of the server process, of its guests, the ratio
to the echo's server process, and beside the echo-guest floor), and JSON (default
bench/results/instructions.json). The callgrind files of the last round's N2 window are kept in
`--keep DIR` (default a temporary directory, printed) for `callgrind_annotate`.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

if __name__ == "__main__":
    from bench.run import _use_project_venv

    _use_project_venv()

from bench import measure  # noqa: E402
from bench._common import write_json  # noqa: E402
from bench.workloads import fixture_code, fixture_config  # noqa: E402
from runner.service.proto import runner_api_pb2 as pb  # noqa: E402
from runner.service.proto import runner_api_pb2_grpc as pb_grpc  # noqa: E402

SYSTEMS = ("echo", "echo-hop", "echo-guest", "runner")
DEFAULT_SYSTEMS = ("echo", "echo-guest", "runner")
LABELS = {"echo": "gRPC echo (floor)", "echo-hop": "gRPC echo + process hop",
          "echo-guest": "gRPC echo + Python guest", "runner": "runner (Python fixture)"}
START_TIMEOUT_S = 900.0


def callgrind_control(flag: str, pids: list[int]) -> None:
    """Zero (-z) or dump (-d) the counters of exactly these valgrind'ed processes (never all of
    the host's: other sessions may run valgrind too)."""
    for pid in pids:
        out = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0 or "OK" not in out.stdout:
            raise RuntimeError(f"callgrind_control {flag} {pid}: {out.stdout} {out.stderr}")


def dump_total(path: str) -> int:
    """The Ir total of one callgrind dump file."""
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


class CallgrindServer:
    """A bench/servers.py kind under callgrind; its stdout is read for `PORT n`."""

    def __init__(self, kind: str, outdir: str, data_dir: str | None, trace_children: bool,
                 peers: int) -> None:
        self.kind, self.outdir = kind, outdir
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outdir}/cg.%p",
               f"--log-file={outdir}/vg.%p.log",
               f"--trace-children={'yes' if trace_children else 'no'}",
               sys.executable, "-m", "bench.servers", kind, "--peers", str(peers)]
        if data_dir:
            cmd += ["--data", data_dir]
        env = dict(os.environ, PYTHONHASHSEED="0")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.pid = self.proc.pid  # valgrind execs its tool in place: the same pid
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or not line[0].startswith("PORT "):
            self.close()
            raise RuntimeError(f"{kind} under valgrind did not start (said {line!r}); "
                               f"see {outdir}/vg.*.log")
        self.address = f"127.0.0.1:{int(line[0].split()[1])}"

    def guest_pids(self) -> list[int]:
        """Descendants running under callgrind (traced guests), not the server itself."""
        import psutil

        out = []
        for child in psutil.Process(self.pid).children(recursive=True):
            try:
                if "callgrind" in os.path.basename(child.exe()):
                    out.append(child.pid)
            except psutil.Error:
                pass
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class Window:
    """Counters zeroed at entry, dumped at exit; `ir[pid]` the dumped totals."""

    def __init__(self, srv: CallgrindServer, pids: list[int]) -> None:
        self.srv, self.pids = srv, pids
        self.ir: dict[int, int] = {}
        self.files: dict[int, str] = {}

    def __enter__(self) -> "Window":
        callgrind_control("-z", self.pids)
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.elapsed_s = time.monotonic() - self.t0
        if exc[0] is not None:
            return
        before = {pid: set(glob.glob(f"{self.srv.outdir}/cg.{pid}.*")) for pid in self.pids}
        callgrind_control("-d", self.pids)
        for pid in self.pids:
            new = set(glob.glob(f"{self.srv.outdir}/cg.{pid}.*")) - before[pid]
            if len(new) != 1:
                raise RuntimeError(f"expected one new dump of {pid}, found {sorted(new)}")
            self.files[pid] = new.pop()
            self.ir[pid] = dump_total(self.files[pid])


def run_system(kind: str, args, outdir: str) -> dict:
    data = tempfile.mkdtemp(prefix="instr-data-", dir=args.scratch) if kind == "runner" else None
    trace = kind in ("echo-guest", "echo-hop") and not args.no_guests
    srv = CallgrindServer(kind, outdir, data, trace, args.guest_peers)
    try:
        name = "echo"
        ch = measure.channel(srv.address)
        if kind == "runner":
            code, handler = fixture_code("python")
            cfg = fixture_config("python", handler)
            cfg.timeout_s = 900  # valgrind: a 3 s default would time the guest out
            name = "instr-python"
            pb_grpc.FunctionsStub(ch).Deploy(pb.DeployRequest(name=name, code=code, config=cfg),
                                             timeout=START_TIMEOUT_S)
        client = measure.InvokeClient(srv.address, name)

        def invoke(n: int) -> None:
            for _ in range(n):
                resp = client.invoke()
                if kind == "runner" and resp.report.cold_start:
                    raise RuntimeError("a measured invocation was a cold start")

        t0 = time.monotonic()
        client.invoke()  # the runner: its cold start
        invoke(args.warmup)
        warm_s = time.monotonic() - t0
        guests = srv.guest_pids()
        pids = [srv.pid, *guests]
        rounds = []
        for r in range(args.rounds):
            with Window(srv, pids) as idle:
                time.sleep(args.idle)
            with Window(srv, pids) as w1:
                invoke(args.n1)
            with Window(srv, pids) as w2:
                invoke(args.n2)
            per = {}
            for pid in pids:
                rate = idle.ir[pid] / idle.elapsed_s
                per[pid] = (w2.ir[pid] - w1.ir[pid] - rate * (w2.elapsed_s - w1.elapsed_s)) \
                    / (args.n2 - args.n1)
            rounds.append({
                "server_ir_per_inv": per[srv.pid],
                "guests_ir_per_inv": sum(per[p] for p in guests) if guests else None,
                "server_ir_n1": w1.ir[srv.pid], "server_ir_n2": w2.ir[srv.pid],
                "server_idle_ir_per_s": idle.ir[srv.pid] / idle.elapsed_s,
                "t_n1_s": w1.elapsed_s, "t_n2_s": w2.elapsed_s,
                "server_naive_ir_per_inv": w2.ir[srv.pid] / args.n2,
            })
            print(f"  {kind} round {r + 1}: server {per[srv.pid]:,.0f} Ir/inv"
                  + (f", guests {rounds[-1]['guests_ir_per_inv']:,.0f}" if guests else "")
                  + f" ({w2.elapsed_s / args.n2 * 1000:.1f} ms/inv under valgrind)",
                  file=sys.stderr, flush=True)
            if r == args.rounds - 1 and args.keep:
                for window, name in ((w2, "n2"), (idle, "idle")):
                    for pid, path in window.files.items():
                        role = "server" if pid == srv.pid else f"guest-{pid}"
                        shutil.copy(path, os.path.join(args.keep, f"{kind}.{role}.{name}.callgrind"))
        client.close()
        ch.close()
    finally:
        srv.close()
        if data:
            shutil.rmtree(data, ignore_errors=True)
    srv_vals = [r["server_ir_per_inv"] for r in rounds]
    guest_vals = [r["guests_ir_per_inv"] for r in rounds if r["guests_ir_per_inv"] is not None]
    return {
        "kind": kind, "label": LABELS[kind], "warmup_s": warm_s,
        "server_ir_per_inv": statistics.median(srv_vals),
        "server_ir_per_inv_min": min(srv_vals), "server_ir_per_inv_max": max(srv_vals),
        "guests_ir_per_inv": statistics.median(guest_vals) if guest_vals else None,
        "guests_traced": bool(guests), "rounds": rounds,
    }


def table(results: dict) -> str:
    echo = results.get("echo", {}).get("server_ir_per_inv")
    floor = results.get("echo-guest", {}).get("server_ir_per_inv")
    lines = [f"{'system':28} {'server Ir/inv':>14} {'(min-max)':>23} {'guests Ir/inv':>14} "
             f"{'vs echo':>8} {'- echo-guest':>13}", "-" * 106]
    for kind, r in results.items():
        s = r["server_ir_per_inv"]
        g = r["guests_ir_per_inv"]
        gtxt = f"{g:14,.0f}" if g is not None else (
            f"{'not traced':>14}" if kind in ("runner", "echo-guest", "echo-hop") else f"{'-':>14}")
        lines.append(
            f"{r['label']:28} {s:14,.0f} {r['server_ir_per_inv_min']:>11,.0f}-"
            f"{r['server_ir_per_inv_max']:<11,.0f} {gtxt} "
            + (f"{s / echo:7.2f}x" if echo else f"{'':8}")
            + (f" {s - floor:+13,.0f}" if floor is not None and kind != "echo-guest" else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="instructions_bench.py",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                    help=f"comma-separated, of {', '.join(SYSTEMS)}")
    ap.add_argument("--n1", type=int, default=200)
    ap.add_argument("--n2", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--idle", type=float, default=30.0,
                    help="seconds of the idle window (the runner's background threads run by "
                         "the clock, in bursts: a 10 s window misjudged their rate by up to 2x)")
    ap.add_argument("--guest-peers", type=int, default=2,
                    help="peers/guests of the echo-hop and echo-guest servers")
    ap.add_argument("--no-guests", action="store_true", help="do not trace any guest")
    ap.add_argument("--keep", help="directory for the last round's N2 callgrind files")
    ap.add_argument("--json", help="output (default bench/results/instructions.json)")
    ap.add_argument("--scratch", default=None, help="where the runner's data directory goes")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("instructions_bench: needs valgrind (apt-get install valgrind)")
    if args.n2 <= args.n1:
        raise SystemExit("--n2 must be larger than --n1")
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        if s not in SYSTEMS:
            raise SystemExit(f"unknown system {s!r}")
    if args.keep is None:
        args.keep = tempfile.mkdtemp(prefix="instr-callgrind-")
    os.makedirs(args.keep, exist_ok=True)
    from bench.run import _git_commit as git_commit

    started = time.time()
    results = {}
    for kind in systems:
        outdir = tempfile.mkdtemp(prefix=f"instr-{kind}-")
        print(f"{kind}: under callgrind ...", file=sys.stderr, flush=True)
        try:
            results[kind] = run_system(kind, args, outdir)
        finally:
            shutil.rmtree(outdir, ignore_errors=True)
    print(f"Instructions per warm invocation (callgrind Ir, 1 client, N {args.n1} -> {args.n2}, "
          f"{args.rounds} round(s), median; commit {git_commit()})")
    print(table(results))
    print(f"callgrind files of the last N2 window: {args.keep}")
    path = write_json("instructions.json", {
        "meta": {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                 "elapsed_s": time.time() - started, "commit": git_commit(),
                 "n1": args.n1, "n2": args.n2, "warmup": args.warmup, "rounds": args.rounds,
                 "idle_s": args.idle, "unit": "instructions (callgrind Ir) per invocation"},
        "systems": results}, args.json)
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
