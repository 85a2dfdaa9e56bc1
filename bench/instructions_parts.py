"""The runner's host work per warm invocation split into parts, counted by callgrind in one
process (no gRPC): `python bench/instructions_parts.py [--n1 200 --n2 1200]`.

A companion of bench/instructions_bench.py (which counts whole servers): here a Runner with
the bench's Python fixture runs in this process under `valgrind --tool=callgrind` (its guests
natively, in their sandboxes), and each part is a loop of N calls of one slice of a warm
invocation; the Ir total of two runs (N1 and N2 calls) differenced and divided by N2 - N1 is
that slice's cost per call, start-up cancelled. Parts (each includes the ones above it):

* `bare`: the echo-guest floor's hop (bench/servers.py): an invoke frame to our Python guest,
  spawned unsandboxed, and its reply read back, with nothing else;
* `pool`: the pool's acquire + release of a warm environment, alone;
* `env`: acquire, the environment's invoke (frame, wait, reply checks, cgroup counters),
  release;
* `nolog`: Runner.invoke_log_later without writing the log block;
* `full`: Runner.invoke_log_later and the block's write (what the gRPC edge runs);
* `edge`: the gRPC servicer's Invoke called directly (validation, admission, response
  message and its serialisation, the deferred log write), without grpcio.

The Runner's background threads run by the clock meanwhile; their rate (a loop of 10 ms
sleeps) is taken out for the time each part's extra calls took (the `raw` column keeps it in).

Run as `python bench/instructions_parts.py --part P --calls N` it is the loop itself (what
valgrind runs).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PARTS = ("bare", "pool", "env", "nolog", "full", "edge")
PAYLOAD = b'{"bench": "payload", "n": 1}'


def loop(part: str, calls: int) -> None:
    from bench.workloads import fixture_code
    from runner import Runner
    from runner.environments.base import InvokeRequest

    data = tempfile.mkdtemp(prefix="instr-parts-")
    code_dir = tempfile.mkdtemp(prefix="instr-parts-code-")
    r = Runner(data, idle_ttl_s=3600)
    try:
        code, handler = fixture_code("python")
        zipfile.ZipFile(io.BytesIO(code)).extractall(code_dir)
        r.deploy("f", code_dir, runtime="python", handler=handler, memory_mb=1769, timeout_s=900)
        for _ in range(20):  # the cold start and a warm-up
            _result, pending = r.invoke_log_later("f", PAYLOAD)
            pending.write()
        version = r.resolve_for_invoke("f", None)
        ctx = r.contexts.get(version, None, time.time())

        def full():
            _result, pending = r.invoke_log_later("f", PAYLOAD)
            pending.write()

        def nolog():
            _result, pending = r.invoke_log_later("f", PAYLOAD)
            pending._block = None  # the promise kept without a block
            r.logs.append("f", "", reserved=True)

        def env():
            lease = r.pool.acquire(version)
            out = lease.env.invoke(InvokeRequest(
                "00000000-0000-4000-8000-000000000000", PAYLOAD, 900, time.monotonic() + 900,
                ctx, int((time.time() + 900) * 1000), "", None))
            r.pool.release(lease, out.reusable)

        def pool():
            r.pool.release(r.pool.acquire(version), True)

        fn = {"full": full, "nolog": nolog, "env": env, "pool": pool}.get(part)
        if part == "bare":
            from bench.servers import init_guest, invoke_frame, spawn_guest
            from runner.environments.process import frames

            sock, _proc = spawn_guest("python")
            reader = init_guest(sock)
            first = [True]

            def fn():
                sock.sendall(invoke_frame("python", "00000000-0000-4000-8000-000000000000",
                                          PAYLOAD, first[0]))
                first[0] = False
                frames.recv_blocking(sock, reader)
        elif part == "edge":
            from runner.service.admission import Slots
            from runner.service.grpc import server as grpc_server
            from runner.service.proto import runner_api_pb2 as pb

            svc = grpc_server.InvokerServicer(r, Slots(256, "invocations"), Slots(64, "followers"))
            request = pb.InvokeRequest(name="f", payload=PAYLOAD)

            class Context:
                def invocation_metadata(self):
                    return ()

            context = Context()

            def fn():
                grpc_server._run_then_deferred(svc.Invoke, (request, context), {}) \
                    .SerializeToString()
        if part == "idle":
            def fn():
                time.sleep(0.01)
        t0 = time.monotonic()
        for _ in range(calls):
            fn()
        print(f"LOOP_S {time.monotonic() - t0:.6f}", file=sys.stderr, flush=True)
    finally:
        r.close()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(code_dir, ignore_errors=True)


def total_ir(part: str, calls: int, outdir: str) -> tuple[int, float]:
    """(Ir of the whole run, seconds its loop took)."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outdir}/cg.{part}.{calls}.%p",
         sys.executable, os.path.abspath(__file__), "--part", part, "--calls", str(calls)],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
    m = re.search(r"Collected : (\d+)", out.stderr)
    t = re.search(r"LOOP_S ([\d.]+)", out.stderr)
    if out.returncode != 0 or m is None or t is None:
        raise RuntimeError(f"{part} x {calls} under callgrind failed:\n{out.stderr[-2000:]}")
    return int(m.group(1)), float(t.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="instructions_parts.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--n1", type=int, default=200)
    ap.add_argument("--n2", type=int, default=1200)
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.part:
        loop(args.part, args.calls)
        return 0
    outdir = tempfile.mkdtemp(prefix="instr-parts-cg-")
    rows = []
    try:
        # The Runner's background threads (reaper, freezer, metrics flush) run by the clock,
        # and a call under valgrind takes milliseconds: their rate, from a loop of 10 ms
        # sleeps, is taken out of each part for the time its extra calls took.
        (i1, s1), (i2, s2) = (total_ir("idle", n, outdir) for n in (50, 250))
        rate = (i2 - i1) / (s2 - s1)
        print(f"  idle: {rate:,.0f} Ir/s", file=sys.stderr, flush=True)
        for part in args.parts.split(","):
            (a, ta), (b, tb) = total_ir(part, args.n1, outdir), total_ir(part, args.n2, outdir)
            dn = args.n2 - args.n1
            rows.append((part, (b - a) / dn, (b - a - rate * (tb - ta)) / dn))
            print(f"  {part}: {rows[-1][2]:,.0f} Ir/call", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    print(f"Ir per call, in one process (callgrind, N {args.n1} -> {args.n2}; background "
          f"threads {rate:,.0f} Ir/s taken out)")
    print(f"{'part':8} {'Ir/call':>10} {'raw':>10}")
    for part, raw, ir in rows:
        print(f"{part:8} {ir:10,.0f} {raw:10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
