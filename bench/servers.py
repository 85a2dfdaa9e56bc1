"""The gRPC servers the suite talks to, each in its own process:

* `runner`: the real service (`build_server` over a `Runner`), exactly as `runner serve` runs it;
* `echo`: the floor, a bare grpcio server answering Invoker.Invoke with the request's payload,
  built with the same SERVER_OPTIONS and the same worker count, so the only difference between
  the two is the runner itself;
* `echo-hop`: the echo, but every call first sends the payload to a child process over a
  socketpair and waits for it back (a trivial Python peer: no runtime, no limits, no logs).
  That is the floor of any design that runs guests outside the server process, so the table
  can show how much of the runner's overhead is the process boundary itself.

A separate process matters: a Python client and server sharing one interpreter would share one
GIL, and the benchmark would measure that contention instead of the server.

Run as `python -m bench.servers {runner,echo} [--data DIR]`; it prints `PORT <n>` once listening
and serves until its stdin closes (so it dies with the benchmark, even on a crash).
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import subprocess
import sys
from concurrent import futures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EchoInvoker:
    """Invoker.Invoke with nothing behind it: the cost of gRPC alone."""

    def Invoke(self, request, context):
        from runner.service.proto import runner_api_pb2 as pb

        return pb.InvokeResponse(payload=request.payload, status_code=200)


HOP_PEERS = 40  # more than the suite's 32 clients: a call never waits for a free peer


def _hop_peer(sock: socket.socket) -> None:
    """In a forked child: answer every message with itself until EOF. Never returns."""
    try:
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            sock.sendall(data)
    finally:
        os._exit(0)


class HopInvoker(EchoInvoker):
    """EchoInvoker behind one round trip to a peer process per call."""

    def __init__(self) -> None:
        # Forked before the gRPC server exists, so no thread of it is copied half-way (fork
        # copies only the calling thread). Each peer serves one call at a time: a call takes
        # a free peer's socket from the queue and puts it back when answered.
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        mine: list[socket.socket] = []
        for _ in range(HOP_PEERS):
            ours, theirs = socket.socketpair()
            if os.fork() == 0:
                # Drop the server's ends of this and every earlier pair: a peer holding another
                # peer's socket would keep that one from ever seeing EOF, and outlive the server.
                for sock in (ours, *mine):
                    sock.close()
                _hop_peer(theirs)
            theirs.close()
            mine.append(ours)
            self.free.put(ours)

    def Invoke(self, request, context):
        sock = self.free.get()
        try:
            sock.sendall(request.payload)
            got = b""
            while len(got) < len(request.payload):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("hop peer died")
                got += chunk
        finally:
            self.free.put(sock)
        return super().Invoke(request, context)


def build_echo_server(host: str = "127.0.0.1", port: int = 0, hop: bool = False):
    import grpc

    from runner.service.proto import runner_api_pb2_grpc as pb_grpc
    from runner.service.server import DEFAULT_WORKERS, SERVER_OPTIONS

    # Made before the server: HopInvoker forks its peers, and no gRPC thread exists yet.
    servicer = type("EchoServicer", (HopInvoker if hop else EchoInvoker,
                                     pb_grpc.InvokerServicer), {})()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=DEFAULT_WORKERS,
                                                    thread_name_prefix="rpc"),
                         options=SERVER_OPTIONS)
    pb_grpc.add_InvokerServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return server, bound


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.servers")
    ap.add_argument("kind", choices=("runner", "echo", "echo-hop"))
    ap.add_argument("--data", help="runner data directory")
    ap.add_argument("--max-environments", type=int, default=512)
    args = ap.parse_args(argv)
    if args.kind in ("echo", "echo-hop"):
        server, port = build_echo_server(hop=args.kind == "echo-hop")
        runner = None
    else:
        from runner import Runner
        from runner.service.server import build_server

        # A long idle TTL: the reaper must not destroy warm environments mid-measurement.
        runner = Runner(args.data, idle_ttl_s=3600, max_environments=args.max_environments)
        server, port = build_server(runner, "127.0.0.1", 0)
    server.start()
    print(f"PORT {port}", flush=True)
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    finally:
        server.stop(grace=1).wait()
        if runner is not None:
            runner.close()
    return 0


class ServerProcess:
    """Start a server kind in a child process; `address` once listening. A context manager."""

    def __init__(self, kind: str, data_dir: str | None = None) -> None:
        cmd = [sys.executable, "-m", "bench.servers", kind]
        if data_dir:
            cmd += ["--data", data_dir]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"{kind} server did not start (said {line!r}); see stderr above")
        self.address = f"127.0.0.1:{int(line.split()[1])}"
        self.pid = self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
