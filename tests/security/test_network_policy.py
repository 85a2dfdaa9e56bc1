"""The per-function network policy (confinement/egress.py) against a guest that tries every
door: the runner's own gRPC and HTTP ports, host loopback services listed or not, and the
outside world. The test process is the runner (a real server on loopback ports), so "the
runner's ports" are exactly the ones a deployed guest would aim at."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import zipfile

import psutil
import pytest

from runner import Runner
from runner.confinement import namespaces
from runner.service.grpc.server import build_server
from runner.service.http import HttpFront

PROBE = """
import socket
def handler(event, context):
    out = {}
    for name, (host, port) in event.items():
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect((host, port))
            s.sendall(b"ping")
            data = s.recv(16)
            out[name] = "echo" if data == b"ping" else ("closed" if not data else "answered")
        except OSError as e:
            out[name] = type(e).__name__
        finally:
            s.close()
    return out
"""


ECHO = """
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def echo(c):
    with c:
        try:
            c.sendall(c.recv(16))
        except OSError:
            pass
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""


class Echo:
    """A TCP echo service on `host` in a process of its own: every socket this (runner)
    process listens on is the runner's, which no policy relays (egress._own_ports)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", ECHO, host], stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def server(tmp_path):
    if namespaces.mode() == "off":
        pytest.skip("network policies need the bubblewrap sandbox (namespaces off here)")
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    srv, grpc_port = build_server(runner, "127.0.0.1", 0)
    srv.start()
    front = HttpFront(runner, "127.0.0.1", 0)
    front.start()
    echoes = [Echo(), Echo()]
    yield runner, grpc_port, front.port, echoes
    for e in echoes:
        e.close()
    front.stop()
    srv.stop(grace=2).wait()
    runner.close()


def code() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", PROBE)
    return buf.getvalue()


def probe(runner, name, targets, **cfg):
    runner.deploy(name, code(), runtime="python", handler="app.handler", timeout_s=30, **cfg)
    r = runner.invoke(name, json.dumps(targets).encode())
    assert not r.function_error, r.payload
    return json.loads(r.payload)


def test_none_reaches_nothing(server):
    runner, grpc_port, http_port, (echo, _) = server
    out = probe(runner, "n", {"grpc": ["127.0.0.1", grpc_port], "http": ["127.0.0.1", http_port],
                              "echo": ["127.0.0.1", echo.port]}, network_policy="none")
    assert "echo" not in out.values(), out
    assert out["echo"] == "ConnectionRefusedError"  # its own, empty loopback


def test_allow_list_reaches_exactly_the_listed_endpoints(server):
    runner, grpc_port, http_port, (listed, unlisted) = server
    policy = f"allow=127.0.0.1:{listed.port},127.0.0.1:{grpc_port}"  # the runner's port, listed
    out = probe(runner, "a", {"listed": ["127.0.0.1", listed.port],
                              "unlisted": ["127.0.0.1", unlisted.port],
                              "grpc": ["127.0.0.1", grpc_port],
                              "http": ["127.0.0.1", http_port]}, network_policy=policy)
    assert out["listed"] == "echo", out
    assert out["unlisted"] == "ConnectionRefusedError"
    assert out["http"] == "ConnectionRefusedError"
    # Accepted by the relay, which never relays the runner's port: closed at once (a reset
    # when the guest's bytes were still unread).
    assert out["grpc"] in ("closed", "ConnectionResetError"), out


def _outside_ip() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def test_full_reaches_outside_but_never_the_hosts_loopback(server):
    runner, grpc_port, http_port, (echo, _) = server
    ip = _outside_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this host to stand for the outside world")
    outside = Echo("0.0.0.0")  # a service on the host's own address stands for the world
    try:
        out = probe(runner, "f", {"outside": [ip, outside.port],
                                  "grpc": ["127.0.0.1", grpc_port],
                                  "http": ["127.0.0.1", http_port],
                                  "grpc_via_gateway": ["10.0.2.2", grpc_port],
                                  "http_via_gateway": ["10.0.2.2", http_port],
                                  "grpc_via_ip": [ip, grpc_port],
                                  "loopback_via_gateway": ["10.0.2.2", echo.port]},
                    network_policy="full")
    finally:
        outside.close()
    assert out.pop("outside") == "echo", out
    assert "echo" not in out.values() and "answered" not in out.values(), out


def test_policy_is_validated():
    from runner.errors import InvalidParameter
    from runner.network_policy import parse_network_policy

    assert parse_network_policy("allow=localhost:80,10.1.2.3:443") == \
        ("allow", (("127.0.0.1", 80), ("10.1.2.3", 443)))
    for bad in ("all", "allow=", "allow=example.com:80", "allow=1.2.3.4", "allow=1.2.3.4:0",
                "allow=1.2.3.999:80"):
        with pytest.raises(InvalidParameter, match="network"):
            parse_network_policy(bad)


NODE_PROBE = """
const net = require("net");
function probe(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({host, port});
    s.setTimeout(3000, () => { s.destroy(); resolve("timeout"); });
    s.on("connect", () => s.write("ping"));
    s.on("data", (d) => { s.destroy(); resolve(d.toString() === "ping" ? "echo" : "answered"); });
    s.on("end", () => resolve("closed"));
    s.on("error", (e) => resolve(e.code));
  });
}
exports.handler = async (event) => {
  const out = {};
  for (const [name, [host, port]] of Object.entries(event)) out[name] = await probe(host, port);
  return out;
};
"""


def test_allow_list_holds_for_node_guests(server):
    import shutil

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    runner, grpc_port, http_port, (listed, unlisted) = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.js", NODE_PROBE)
    runner.deploy("nodeprobe", buf.getvalue(), runtime="nodejs", handler="index.handler",
                  timeout_s=30, network_policy=f"allow=127.0.0.1:{listed.port}")
    r = runner.invoke("nodeprobe", json.dumps({
        "listed": ["127.0.0.1", listed.port], "unlisted": ["127.0.0.1", unlisted.port],
        "grpc": ["127.0.0.1", grpc_port], "http": ["127.0.0.1", http_port]}).encode())
    assert not r.function_error, r.payload
    out = json.loads(r.payload)
    assert out == {"listed": "echo", "unlisted": "ECONNREFUSED", "grpc": "ECONNREFUSED",
                   "http": "ECONNREFUSED"}, out


FLOOD = """
import socket
def handler(event, context):
    held, ok = [], 0
    for _ in range(event["n"]):
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect(("127.0.0.1", event["port"]))
            s.sendall(b"ping")
            if s.recv(16) == b"ping":
                ok += 1
        except OSError:
            pass
        held.append(s)  # kept open: each would hold a relay for as long as it lives
    return {"ok": ok}
"""


def test_a_guest_cannot_make_the_relay_start_threads_without_bound(server):
    from runner.confinement import egress

    runner, _, _, (echo, _) = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", FLOOD)
    runner.deploy("flood", buf.getvalue(), runtime="python", handler="app.handler", timeout_s=60,
                  network_policy=f"allow=127.0.0.1:{echo.port}")
    r = runner.invoke("flood", json.dumps({"n": egress.MAX_CONNECTIONS + 20,
                                           "port": echo.port}).encode())
    assert not r.function_error, r.payload
    assert json.loads(r.payload)["ok"] == egress.MAX_CONNECTIONS


def test_allow_list_with_a_non_loopback_address(server):
    runner, _, _, (loopback_only, _) = server
    ip = _outside_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    remote, other = Echo("0.0.0.0"), Echo("0.0.0.0")
    try:
        out = probe(runner, "ra", {"listed": [ip, remote.port], "unlisted": [ip, other.port],
                                   "loopback": ["127.0.0.1", loopback_only.port]},
                    network_policy=f"allow={ip}:{remote.port}")
    finally:
        remote.close()
        other.close()
    assert out == {"listed": "echo", "unlisted": "ConnectionRefusedError",
                   "loopback": "ConnectionRefusedError"}, out
