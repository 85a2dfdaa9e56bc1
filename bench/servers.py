"""The two gRPC servers the suite talks to, each in its own process:

* `runner`: the real service (`build_server` over a `Runner`), exactly as `runner serve` runs it;
* `echo`: the floor, a bare grpcio server answering Invoker.Invoke with the request's payload,
  built with the same SERVER_OPTIONS and the same worker count, so the only difference between
  the two is the runner itself.

A separate process matters: a Python client and server sharing one interpreter would share one
GIL, and the benchmark would measure that contention instead of the server.

Run as `python -m bench.servers {runner,echo} [--data DIR]`; it prints `PORT <n>` once listening
and serves until its stdin closes (so it dies with the benchmark, even on a crash).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent import futures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EchoInvoker:
    """Invoker.Invoke with nothing behind it: the cost of gRPC alone."""

    def Invoke(self, request, context):
        from runner.service.proto import runner_api_pb2 as pb

        return pb.InvokeResponse(payload=request.payload, status_code=200)


def build_echo_server(host: str = "127.0.0.1", port: int = 0):
    import grpc

    from runner.service.proto import runner_api_pb2_grpc as pb_grpc
    from runner.service.server import DEFAULT_WORKERS, SERVER_OPTIONS

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=DEFAULT_WORKERS,
                                                    thread_name_prefix="rpc"),
                         options=SERVER_OPTIONS)
    servicer = type("EchoServicer", (EchoInvoker, pb_grpc.InvokerServicer), {})()
    pb_grpc.add_InvokerServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return server, bound


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.servers")
    ap.add_argument("kind", choices=("runner", "echo"))
    ap.add_argument("--data", help="runner data directory")
    ap.add_argument("--max-environments", type=int, default=512)
    args = ap.parse_args(argv)
    if args.kind == "echo":
        server, port = build_echo_server()
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
