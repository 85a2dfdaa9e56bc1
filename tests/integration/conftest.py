"""A real server on a loopback port, driven through a real gRPC client."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from runner import Runner
from runner.service.grpc.server import SERVER_OPTIONS, build_server
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc


class Client:
    """The generated stubs plus helpers for the common calls."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(address, options=SERVER_OPTIONS[:2])
        self.functions = pb_grpc.FunctionsStub(self.channel)
        self.invoker = pb_grpc.InvokerStub(self.channel)

    def deploy(self, name: str, code: bytes = b"", **config) -> pb.FunctionInfo:
        env = config.pop("environment", {})
        return self.functions.Deploy(pb.DeployRequest(
            name=name, code=code, config=pb.FunctionConfig(environment=env, **config)))

    def invoke(self, name: str, payload: bytes = b"", **kw) -> pb.InvokeResponse:
        return self.invoker.Invoke(pb.InvokeRequest(name=name, payload=payload, **kw))

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def server(tmp_path):
    """(runner, address) of a started server; stopped after the test."""
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    srv, port = build_server(runner, "127.0.0.1", 0)
    srv.start()
    yield runner, f"127.0.0.1:{port}"
    srv.stop(grace=5).wait()
    runner.close()


@pytest.fixture
def client(server):
    c = Client(server[1])
    yield c
    c.close()


def error_type(exc: grpc.RpcError) -> str:
    return dict(exc.trailing_metadata() or ()).get("x-error-type", "")


@pytest.fixture
def stub_http():
    """Starts loopback HTTP servers standing in for an outside service (an OTLP collector, S3):
    `start(respond)` returns the base URL of a server whose every GET and POST is answered by
    `respond(request) -> (status, content_type, body)`, `request` being the handler (path,
    headers, rfile). The servers stop when the test ends."""
    servers = []

    def start(respond) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                status, content_type, out = respond(self)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()
