"""The gRPC servers the suite talks to, each in its own process:

* `runner`: the real service (`build_server` over a `Runner`), exactly as `runner serve` runs it;
* `echo`: the floor, a bare grpcio server answering Invoker.Invoke with the request's payload,
  built with the same SERVER_OPTIONS, executor and worker count, so the only difference between
  the two is the runner itself;
* `echo-hop`: the echo, but every call first sends the payload to a child process over a
  socketpair and waits for it back (a trivial Python peer: no runtime, no limits, no logs).
  That is the floor of any design that runs guests outside the server process, so the table
  can show how much of the runner's overhead is the process boundary itself.
* `echo-guest` / `echo-node-guest`: the echo, but every call is one invocation of the bench's
  Python / Node.js fixture in a real guest (the runner's own bootstrap, spawned unsandboxed)
  with the least host code possible: no pool, limits, logs, report or validation. The floor
  of a runner whose guests are what ours are; what the runner adds on top is all host-side.

Peers and guests are handed out most recently used first, as the runner's pool does: the one
the last call used has its pages and caches warm.

A separate process matters: a Python client and server sharing one interpreter would share one
GIL, and the benchmark would measure that contention instead of the server.

Run as `python -m bench.servers KIND [--data DIR] [--pool renewing|plain]` (KIND: runner,
echo, echo-hop, echo-guest, echo-node-guest); it prints `PORT <n>` once listening and serves
until its stdin closes (so it dies with the benchmark, even on a crash). `--pool plain` swaps
the servers' RPC thread pool for a bare ThreadPoolExecutor (the baseline of
bench/burst_bench.py); everything else measures the pool the runner ships with.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import subprocess
import sys
import threading
import time

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


class _Stack:
    """Free peers, most recently used on top. Never empty for the suite: it has more peers than
    its largest client count, and each call holds one peer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list = []

    def put(self, item) -> None:
        with self._lock:
            self._items.append(item)

    def get(self):
        with self._lock:
            if not self._items:
                raise RuntimeError("more concurrent calls than there are peers")
            return self._items.pop()


class HopInvoker(EchoInvoker):
    """EchoInvoker behind one round trip to a peer process per call."""

    def __init__(self, peers: int = HOP_PEERS) -> None:
        # Forked before the gRPC server exists, so no thread of it is copied half-way (fork
        # copies only the calling thread). Each peer serves one call at a time: a call takes
        # a free peer's socket from the stack and puts it back when answered.
        self.free = _Stack()
        mine: list[socket.socket] = []
        for _ in range(peers):
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


PYTHON_GUEST_DIR = os.path.join(ROOT, "runner", "environments", "python", "guest")
NODE_GUEST_DIR = os.path.join(ROOT, "runner", "environments", "node", "guest")
FIXTURES_DIR = os.path.join(ROOT, "bench", "fixtures")
GUEST_CONTEXT = {"function_name": "echo", "function_version": "$LATEST",
                 "invoked_function_arn": "arn:aws:lambda:local:000000000000:function:echo",
                 "memory_limit_in_mb": 1769, "log_group_name": "/aws/lambda/echo",
                 "log_stream_name": "2026/01/01/[$LATEST]1"}


def guest_command(runtime: str) -> tuple[list[str], str, str]:
    """(argv, task root, handler) of a bare guest of `runtime`, as the runner starts one
    minus the sandbox and limits."""
    if runtime == "python":
        return ([sys.executable, "-I", "-S", "-B", os.path.join(PYTHON_GUEST_DIR, "python_bootstrap.py")],
                os.path.join(FIXTURES_DIR, "python"), "app.handler")
    from runner.environments.node.process_policy import find_node

    node = find_node()
    if node is None:
        raise RuntimeError("no `node` binary on this host")
    return ([node, os.path.join(NODE_GUEST_DIR, "node_bootstrap.js")],
            os.path.join(FIXTURES_DIR, "node"), "index.handler")


def spawn_guest(runtime: str) -> tuple[socket.socket, subprocess.Popen]:
    """Start one bare guest of `runtime`; returns our end of its channel (hello not yet read)
    and its process. It exits at EOF on the channel, i.e. when we close it or exit."""
    argv, task_root, handler = guest_command(runtime)
    ours, theirs = socket.socketpair()
    env = {"_RUNNER_FD": str(theirs.fileno()), "_HANDLER": handler,
           "LAMBDA_TASK_ROOT": task_root, "PATH": os.defpath}
    proc = subprocess.Popen(argv, env=env, cwd=task_root, pass_fds=(theirs.fileno(),),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    theirs.close()
    return ours, proc


def init_guest(sock: socket.socket):
    """hello -> init -> ready on a spawned guest's channel; returns the channel's reader."""
    from runner.environments.process import frames

    sock.settimeout(30)
    reader = frames.FrameReader()
    if frames.recv_blocking(sock, reader)["t"] != "hello":
        raise RuntimeError("guest did not say hello")
    frames.send(sock, {"t": "init"})
    if frames.recv_blocking(sock, reader)["t"] != "ready":
        raise RuntimeError("guest init failed")
    sock.settimeout(None)
    return reader


def invoke_frame(runtime: str, request_id: str, payload: bytes, first: bool) -> bytes:
    """An invoke frame as the runner sends it to a guest of `runtime`: marshal to Python,
    msgpack to Node; the context only in the first frame on a channel."""
    from runner.environments.process import frames

    frame = {"t": "invoke", "id": request_id, "payload": payload,
             "deadline_ms": int(time.time() * 1000) + 60_000}
    if first:
        frame["ctx"] = GUEST_CONTEXT
    return (frames.encode_marshal if runtime == "python" else frames.encode)(frame)


class GuestInvoker(EchoInvoker):
    """Each call is one invocation in a real guest (the runner's bootstrap running the bench
    fixture) over the runner's frame protocol, with nothing else of the runner."""

    runtime = "python"

    def __init__(self, peers: int = HOP_PEERS) -> None:
        from runner.environments.process import frames

        self.protocol = frames
        self.free = _Stack()
        self.ids = itertools.count()
        # Spawned before the gRPC server exists (see HopInvoker), all at once, then each
        # answers the init handshake.
        started = [spawn_guest(self.runtime) for _ in range(peers)]
        self.procs = [proc for _, proc in started]  # held: they live as long as this server
        for sock, _ in started:
            self.free.put([sock, init_guest(sock), False])

    def Invoke(self, request, context):
        from runner.service.proto import runner_api_pb2 as pb

        peer = self.free.get()
        try:
            sock, reader, has_ctx = peer
            sock.sendall(invoke_frame(self.runtime, str(next(self.ids)), request.payload,
                                      first=not has_ctx))
            peer[2] = True
            reply = self.protocol.recv_blocking(sock, reader)
        finally:
            self.free.put(peer)
        return pb.InvokeResponse(payload=reply.get("payload") or b"null", status_code=200)


class NodeGuestInvoker(GuestInvoker):
    runtime = "nodejs"


def plain_executor_cls():
    """The runner's RPC executor on a bare ThreadPoolExecutor (what it used before
    docs/decisions/041): the same after-response work, a pool that keeps every thread."""
    from concurrent import futures

    from runner.service.grpc.server import _run_then_deferred

    class PlainRpcExecutor(futures.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            return super().submit(_run_then_deferred, fn, args, kwargs)
    return PlainRpcExecutor


def executor_cls(pool: str):
    from runner.service.grpc.server import RpcExecutor

    return plain_executor_cls() if pool == "plain" else RpcExecutor


def build_echo_server(host: str = "127.0.0.1", port: int = 0, hop: bool = False,
                      guest: str | None = None, pool: str = "renewing", peers: int = HOP_PEERS):
    import grpc

    from runner.service.admission import GRPC_WORKERS
    from runner.service.grpc.server import SERVER_OPTIONS
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc

    # Made before the server: the invokers start their peers, and no gRPC thread exists yet.
    base = {"python": GuestInvoker, "nodejs": NodeGuestInvoker}[guest] if guest else (
        HopInvoker if hop else EchoInvoker)
    servicer = type("EchoServicer", (base, pb_grpc.InvokerServicer), {})(
        *((peers,) if base is not EchoInvoker else ()))
    # The runner's executor too (it runs work handlers defer past the response; the echo
    # defers none, so this only keeps the settings identical).
    server = grpc.server(executor_cls(pool)(max_workers=GRPC_WORKERS, thread_name_prefix="rpc"),
                         options=SERVER_OPTIONS)
    pb_grpc.add_InvokerServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return server, bound


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.servers")
    ap.add_argument("kind", choices=("runner", "echo", "echo-hop", "echo-guest", "echo-node-guest"))
    ap.add_argument("--data", help="runner data directory")
    ap.add_argument("--max-environments", type=int, default=512)
    ap.add_argument("--pool", choices=("renewing", "plain"), default="renewing",
                    help="RPC thread pool: the runner's (renewing) or a bare ThreadPoolExecutor")
    ap.add_argument("--peers", type=int, default=HOP_PEERS,
                    help="peer processes or guests of the echo-hop/-guest kinds (at most this many "
                         "concurrent calls; bench/instructions_bench.py runs them under valgrind)")
    args = ap.parse_args(argv)
    if args.kind.startswith("echo"):
        guest = {"echo-guest": "python", "echo-node-guest": "nodejs"}.get(args.kind)
        server, port = build_echo_server(hop=args.kind == "echo-hop", guest=guest, pool=args.pool,
                                         peers=args.peers)
        runner = None
    else:
        from runner import Runner
        from runner.service.grpc.server import build_server

        # A long idle TTL: the reaper must not destroy warm environments mid-measurement.
        runner = Runner(args.data, idle_ttl_s=3600, max_environments=args.max_environments)
        server, port = build_server(runner, "127.0.0.1", 0, executor_cls=executor_cls(args.pool))
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

    def __init__(self, kind: str, data_dir: str | None = None, pool: str = "renewing") -> None:
        cmd = [sys.executable, "-m", "bench.servers", kind, "--pool", pool]
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
