"""What one warm invocation costs inside our guests, without a host around them.

    .venv/bin/python bench/guest_bench.py [--n 3000] [--rounds 3] [--json FILE]

Drives each guest over its channel from this process, one invocation at a time, exactly as
the runner frames them (bench/servers.py `invoke_frame`): the bench's Python fixture in our
Python bootstrap, the Node fixture in our Node bootstrap, and as the baseline a trivial peer
process that echoes the frame back (the cost of the round trip alone). Per guest: round-trip
p50/p99 as this process sees it, and the guest's own CPU per invocation (its user+system
time over the timed invocations). Kinds alternate round by round; the table shows medians
over rounds. No sandbox, no limits: this isolates the bootstrap's per-invocation work, which
docs/decisions/037 trims. Writes bench/results/guests.json unless --json says otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

from bench._common import write_json  # noqa: E402
from bench.servers import _hop_peer, init_guest, invoke_frame, spawn_guest  # noqa: E402
from runner.environments.node.process_policy import find_node  # noqa: E402
from runner.environments.process import frames  # noqa: E402

PAYLOAD = b'{"bench": "payload", "n": 1}'
WARMUP = 200


def _peer() -> tuple[socket.socket, int]:
    ours, theirs = socket.socketpair()
    pid = os.fork()  # this process has no threads here: fork copies nothing half-done
    if pid == 0:
        ours.close()
        _hop_peer(theirs)
    theirs.close()
    return ours, pid


def measure(kind: str, n: int) -> dict:
    """One guest of `kind` (peer, python, nodejs): n timed invocations after a warm-up."""
    if kind == "peer":
        sock, pid = _peer()
        reader = None
    else:
        sock, proc = spawn_guest(kind)
        pid = proc.pid
        reader = init_guest(sock)
    guest = psutil.Process(pid)
    lat = []
    try:
        for i in range(WARMUP + n):
            if i == WARMUP:
                cpu0 = guest.cpu_times()
            frame = invoke_frame("python" if kind == "peer" else kind, f"r{i}", PAYLOAD, i == 0)
            t0 = time.perf_counter()
            sock.sendall(frame)
            if reader is None:  # the peer echoes the frame's bytes
                got = 0
                while got < len(frame):
                    got += len(sock.recv(1 << 16))
            elif frames.recv_blocking(sock, reader)["t"] != "result":
                raise RuntimeError(f"{kind} guest failed an invocation")
            lat.append(time.perf_counter() - t0)
        cpu1 = guest.cpu_times()
    finally:
        sock.close()
        if kind == "peer":
            os.waitpid(pid, 0)
        else:
            proc.wait(timeout=10)
    lat.sort()
    return {"p50_us": lat[len(lat) // 2] * 1e6, "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
            # Field by field: equal sums of floats can still differ by 1e-14 when mixed.
            "cpu_us_per_invocation": max(0.0, (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="guest_bench.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="timed invocations per guest and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="output file (default bench/results/guests.json)")
    args = ap.parse_args(argv)
    kinds = ["peer", "python"] + (["nodejs"] if find_node() else [])
    rounds: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            rounds[kind].append(measure(kind, args.n))
    keys = ("p50_us", "p99_us", "cpu_us_per_invocation")
    results = {k: {key: statistics.median(r[key] for r in rs) for key in keys} | {"rounds": rs}
               for k, rs in rounds.items()}
    base = results["peer"]
    print(f"{'guest':34s} {'p50 us':>8s} {'p99 us':>8s} {'cpu us/inv':>11s}  vs the peer")
    labels = {"peer": "trivial peer (baseline)", "python": "Python bootstrap + fixture",
              "nodejs": "Node bootstrap + fixture"}
    for kind, r in results.items():
        extra = "" if kind == "peer" else (f"{r['p50_us'] - base['p50_us']:+.0f} us p50, "
                                            f"{r['cpu_us_per_invocation'] - base['cpu_us_per_invocation']:+.0f} us cpu")
        print(f"{labels[kind]:34s} {r['p50_us']:8.0f} {r['p99_us']:8.0f} "
              f"{r['cpu_us_per_invocation']:11.0f}  {extra}")
    if "nodejs" not in results:
        print("Node bootstrap + fixture: unavailable (no `node` binary)")
    out = {"n": args.n, "rounds": args.rounds, "guests": results}
    print("JSON:", write_json("guests.json", out, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
