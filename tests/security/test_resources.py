"""Attacks on shared resources: memory, CPU, output volume, and the network."""

from __future__ import annotations

import socket
import statistics

import psutil
import pytest

from runner.confinement import cgroup_hierarchy
from runner.errors import FunctionOutOfMemory
from tests.security.conftest import alternating_p99s, assert_neighbour_fine, request, result

MB = 1 << 20


def test_memory_bomb_is_killed_and_reported_out_of_memory(h):
    env = h.function("memory-bomb", """
        def handler(event, context):
            hoard = []
            for _ in range(1024):  # up to 8 GiB, touched page by page
                hoard.append(bytearray(8 << 20))
            return {"survived": len(hoard)}
    """, memory_mb=128)
    a = h.attack(env)
    assert_neighbour_fine(a)
    err = a.outcome.error
    assert isinstance(err, FunctionOutOfMemory), (err, a.outcome.payload)
    assert "killed by the kernel's OOM killer" in err.message and "128 MB" in err.message
    assert a.outcome.reusable is False
    # The cgroup's own peak: close to the limit, never past it (+ page rounding).
    assert 96 * MB < a.outcome.max_memory_bytes <= 129 * MB


HOG = """
import os, time
def spin(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
def handler(event, context):
    kids = []
    for _ in range(event["procs"] - 1):
        pid = os.fork()
        if pid == 0:
            spin(event["seconds"])
            os._exit(0)
        kids.append(pid)
    n = spin(event["seconds"])
    for pid in kids:
        os.waitpid(pid, 0)
    return {"spins": n}
"""


def test_cpu_hog_does_not_starve_a_latency_sensitive_neighbour(h):
    """The hog asks for 4 spinning processes but is configured for 1 vCPU (1769 MB): the quota
    holds all four to one CPU, leaving the other core to the neighbour (512 MB).

    Robust on a shared 2-core host: baseline and loaded rounds alternate (each loaded round
    runs during its own short hog burst), so load from elsewhere drifts into both alike, and
    the verdict compares the medians of the rounds' p99s."""
    hog = h.function("cpu-hog", HOG, memory_mb=1769, timeout_s=60)
    group = hog._enforcement.group

    def burst():
        return result(hog.invoke(request({"procs": 4, "seconds": 2.0}, timeout_s=60)))

    assert _cpu_quota(group) == (cgroup_hierarchy.CPU_PERIOD_US, cgroup_hierarchy.CPU_PERIOD_US)  # 1 vCPU
    base, loaded, outs = alternating_p99s(h, burst, rounds=7, n=30)
    assert all(out["spins"] > 0 for out in outs)
    if group.cpu_throttled_us() == 0:
        # The quota throttles only a group that used all of it in some period, which four
        # spinners do unless other work holds more than one of the host's cores the whole
        # time. Then the contention this test judges never happened (CI on a busy machine
        # saw this once): say so instead of judging latencies no hog caused.
        stat = group._kv("cpu", "cpu.stat")
        pytest.skip(f"the hog never reached its 1-CPU quota (cpu.stat {stat}): the host was "
                    "too busy for the contention this test measures")
    b, l = statistics.median(base), statistics.median(loaded)
    assert l <= 2 * b, f"neighbour p99 {l:.1f} ms under load vs {b:.1f} ms baseline ({base} / {loaded})"


def _cpu_quota(group) -> tuple[int, int]:
    """(quota, period) in microseconds as the kernel holds them for `group`."""
    def read(name: str) -> str:
        with open(group._file("cpu", name)) as f:
            return f.read()

    if group.layout.version == 2:
        quota, period = read("cpu.max").split()
        return int(quota), int(period)
    return int(read("cpu.cfs_quota_us")), int(read("cpu.cfs_period_us"))


def test_stdout_flood_is_truncated_and_memory_bounded(h):
    env = h.function("flooder", """
        import os
        def handler(event, context):
            chunk = b"A" * (1 << 20)
            for _ in range(event["mib"]):
                os.write(1, chunk)
            return {"wrote_mib": event["mib"]}
    """, memory_mb=1769, timeout_s=120)
    me = psutil.Process()
    rss0 = me.memory_info().rss
    a = h.attack(env, {"mib": 2048}, timeout_s=120)
    assert_neighbour_fine(a)
    assert result(a.outcome) == {"wrote_mib": 2048}
    assert len(a.outcome.logs) <= MB + 200
    assert a.outcome.logs.rstrip().endswith(b"log truncated: output over 1 MiB per invocation dropped")
    assert me.memory_info().rss - rss0 < 64 * MB


CONNECT = """
import socket
def handler(event, context):
    out = {}
    for host in ("127.0.0.1", event["host_ip"]):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, event["port"]))
            s.sendall(b"hello from guest")
            out[host] = "connected"
        except OSError as e:
            out[host] = type(e).__name__
        finally:
            s.close()
    return out
"""


def _server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.5)
    return srv


def _accepted(srv) -> int:
    n = 0
    while True:
        try:
            c, _ = srv.accept()
        except (TimeoutError, socket.timeout):
            return n
        c.close()
        n += 1


def test_socket_to_host_loopback_is_blocked_without_network(h):
    srv = _server()
    try:
        env = h.function("net-off", CONNECT)
        a = h.attack(env, {"port": srv.getsockname()[1], "host_ip": "127.0.0.1"})
        assert_neighbour_fine(a)
        out = result(a.outcome)
        assert out["127.0.0.1"] in ("ConnectionRefusedError", "TimeoutError"), out
        assert _accepted(srv) == 0
    finally:
        srv.close()


def test_network_flag_gives_outbound_access(h):
    # Documented in docs/security.md: with network=True the guest shares the host's network
    # namespace, so it reaches the host's loopback services too.
    srv = _server()
    try:
        env = h.function("net-on", CONNECT, network=True)
        out = result(env.invoke(request({"port": srv.getsockname()[1], "host_ip": "127.0.0.1"})))
        assert out["127.0.0.1"] == "connected"
        assert _accepted(srv) >= 1
    finally:
        srv.close()
