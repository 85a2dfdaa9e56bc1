"""Shared pieces of the hostile-guest suite: functions from source text, a neighbour function
that must keep working, and a runner that attacks while the neighbour is being served.

Every attack runs through the real sandbox backend (`default_backends()`), exactly as the server
creates environments, with whatever isolation this host supports; tests/test_doctor.py asserts
the full set is on here, so a silent fallback cannot make this suite pass vacuously.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import textwrap
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field

import grpc
import psutil
import pytest

from runner import Runner
from runner.confinement import namespaces
from runner.environments.backends import default_backends
from runner.environments.base import InvokeOutcome, InvokeRequest
from runner.model import FunctionConfig, FunctionVersion
from runner.service.grpc.server import build_server
from runner.service.proto import runner_api_pb2 as pb
from runner.service.proto import runner_api_pb2_grpc as pb_grpc

_rev = iter(range(1, 1_000_000))

NEIGHBOUR = """
import hashlib
def handler(event, context):
    n = event.get("work", 0)
    h = b"x"
    for _ in range(n):
        h = hashlib.sha256(h).digest()
    return {"ok": True, "echo": event.get("echo"), "h": h.hex()[:8]}
"""


# Where a runtime's handler lives: file written with the source, and the handler setting.
HANDLER_FILES = {"python": ("app.py", "app.handler"), "nodejs": ("index.js", "index.handler")}


def make_version(root, name: str, source: str, runtime: str = "python", **cfg) -> FunctionVersion:
    """A function whose app.py (Python) or index.js (Node.js, exporting `handler`) is `source`;
    its code dir is world-readable (the guest runs as an unprivileged uid), like the registry's
    extracted code."""
    filename, handler = HANDLER_FILES[runtime]
    code = os.path.join(str(root), f"code-{name}")
    os.makedirs(code, exist_ok=True)
    with open(os.path.join(code, filename), "w") as f:
        f.write(textwrap.dedent(source))
    os.chmod(code, 0o755)
    os.chmod(os.path.join(code, filename), 0o644)
    cfg.setdefault("timeout_s", 10)
    return FunctionVersion(name, "$LATEST", next(_rev), FunctionConfig(runtime, handler, **cfg),
                           "sha", code)


def request(payload=None, timeout_s: float = 10.0) -> InvokeRequest:
    return InvokeRequest(str(uuid.uuid4()), json.dumps(payload or {}).encode(), timeout_s,
                         time.monotonic() + timeout_s)


def result(outcome: InvokeOutcome):
    assert outcome.error is None, (outcome.error.to_document(), outcome.logs[-2000:])
    return json.loads(outcome.payload)


@dataclass
class Attack:
    outcome: InvokeOutcome
    during: list = field(default_factory=list)  # neighbour results while the attack ran
    after: dict | None = None


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Harness:
    """A real server (the embedded `Runner` behind the gRPC edge) serves a neighbour function
    while guests attack; "keeps serving" is checked through the server, as a client sees it.

    The attackers' environments come from the same sandbox backend the server uses, created
    directly so a test can inspect them (cgroup, uid). Everything lives in the repo's .data/
    (not under /tmp, which every guest replaces with its own): siblings of the runtime
    directory the sandbox does mount, so "invisible" is tested where it is not trivially so.
    """

    def __init__(self) -> None:
        self.root = os.path.join(REPO, ".data", f"security-{uuid.uuid4().hex[:8]}")
        os.makedirs(self.root)
        self.runner = Runner(os.path.join(self.root, "data"), idle_ttl_s=60)
        self.server, port = build_server(self.runner, "127.0.0.1", 0)
        self.port = port  # the server's gRPC port on the host's loopback
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.invoker = pb_grpc.InvokerStub(self.channel)
        self.data_dir = self.runner.data_dir
        self.registry_db = self.runner.registry.db_path
        served = self.runner.deploy("neighbour", _zip(NEIGHBOUR), runtime="python",
                                    handler="app.handler", memory_mb=512)
        self.neighbour_code = served.code_dir  # in the registry's code store
        self.backends = default_backends(os.path.join(self.root, "envs"))
        self.backend = self.backends["python"]
        self.envs = []
        # The same function in an environment of its own, for latency measurements that must
        # not include the gRPC edge's own scheduling noise.
        self.neighbour = self.start(make_version(self.root, "neighbour-direct", NEIGHBOUR, memory_mb=512))

    def start(self, version: FunctionVersion):
        env = self.backends[version.config.runtime].create(version)
        self.envs.append(env)
        env.start()
        return env

    def function(self, name: str, source: str, **cfg):
        return self.start(make_version(self.root, name, source, **cfg))

    def node_function(self, name: str, source: str, **cfg):
        """A Node.js guest: `source` is its index.js, exporting `handler`."""
        return self.start(make_version(self.root, name, source, runtime="nodejs", **cfg))

    def ask_neighbour(self, echo="ping") -> dict:
        """One invocation of the served neighbour through gRPC; must succeed."""
        resp = self.invoker.Invoke(pb.InvokeRequest(
            name="neighbour", payload=json.dumps({"echo": echo}).encode()), timeout=30)
        assert not resp.function_error, resp.payload
        return json.loads(resp.payload)

    def attack(self, env, payload=None, timeout_s: float = 10.0) -> Attack:
        """Invoke `env` in a thread; meanwhile and afterwards the neighbour must answer."""
        box = {}
        t = threading.Thread(target=lambda: box.update(out=env.invoke(request(payload, timeout_s))))
        t.start()
        during = []
        while t.is_alive() or not during:
            during.append(self.ask_neighbour(f"during-{len(during)}"))
            time.sleep(0.05)
        t.join()
        a = Attack(box["out"], during)
        a.after = self.ask_neighbour("after")
        return a

    def close(self) -> None:
        for env in self.envs:
            env.destroy()
        for backend in self.backends.values():
            backend.close()
        self.channel.close()
        self.server.stop(grace=2).wait()
        self.runner.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", textwrap.dedent(source))
    return buf.getvalue()


def assert_neighbour_fine(a: Attack) -> None:
    assert a.during and all(r["ok"] for r in a.during)
    assert [r["echo"] for r in a.during] == [f"during-{i}" for i in range(len(a.during))]
    assert a.after == {"ok": True, "echo": "after", "h": a.after["h"]}


def guest_process(env) -> psutil.Process:
    """The environment's guest process on the host: below the bwrap wrappers of a spawned
    environment, or the forked child itself (zygote backend)."""
    p = psutil.Process(env.pid)
    while namespaces.is_wrapper(p.cmdline()):
        # The first child of the PID namespace's init is the guest; orphans of the namespace
        # (a daemonised grandchild) are reparented to init too, and come later.
        p = min(p.children(), key=lambda c: (c.create_time(), c.pid))
    return p


def guest_uid(env) -> int:
    """The host uid the environment's guest runs as."""
    return guest_process(env).uids().real


def group_pids(env) -> list[int]:
    return env._enforcement.group.pids()


def wait_pids_gone(pids, timeout: float = 3.0) -> list[int]:
    # destroy() sends the SIGKILL at once; what escaped the process group is killed, the rest
    # reaped and the cgroups removed in the background (environments/process/teardown.py).
    from runner.environments.process import teardown

    teardown.drain(10.0)
    deadline = time.monotonic() + timeout
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in pids if _alive(p)]
    return left


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def processes_of_uid(uid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and p.info["uids"].real == uid:
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture(params=["zygote", "spawn"])
def h(request, monkeypatch):
    """Every attack runs against both ways Python environments are made: forked from the
    version's zygote (the default) and spawned fresh (the fallback, and Node.js's path)."""
    monkeypatch.setenv("RUNNER_PYTHON_ZYGOTE", "1" if request.param == "zygote" else "0")
    harness = Harness()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(params=["nodejs"])
def hn(request):
    """The harness for Node.js guests (spawned fresh: Node has no zygote); the neighbour is the
    same served Python function. Parametrized only so that test ids name the runtime."""
    harness = Harness()
    try:
        # A host without `node` has no Node.js backend: fail rather than test nothing.
        assert "nodejs" in harness.backends, "no `node` binary on this host"
        yield harness
    finally:
        harness.close()


def neighbour_p99(h, n: int) -> float:
    """p99 invoke latency (ms) over `n` invocations of the neighbour doing ~2 ms of work."""
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = h.neighbour.invoke(request({"work": 3000, "echo": "x"}))
        lat.append((time.perf_counter() - t0) * 1000)
        assert out.error is None
    lat.sort()
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def alternating_p99s(h, hog_burst, rounds: int, n: int) -> tuple[list[float], list[float], list]:
    """(baseline p99s, loaded p99s, the bursts' results) of the neighbour over `rounds`
    alternating rounds; in each loaded round `hog_burst()` (a blocking call running the hog for
    a few seconds, returning its outcome) runs in a thread. Robust on a shared host: load from
    elsewhere drifts into both series alike, and the caller compares their medians."""
    neighbour_p99(h, 10)  # warm up
    base, loaded, outs = [], [], []
    for _ in range(rounds):
        base.append(neighbour_p99(h, n))
        t = threading.Thread(target=lambda: outs.append(hog_burst()))
        t.start()
        time.sleep(0.3)  # the spinners are up
        loaded.append(neighbour_p99(h, n))
        t.join()
    assert len(outs) == rounds  # no burst raised
    return base, loaded, outs


def attack_watching_pids(harness, env, timeout_s: float):
    """Run `harness.attack(env)` while sampling the environment's cgroup: returns (attack,
    peak number of processes seen at once, every pid seen). For fork bombs: the peak shows the
    pids limit was reached and held, the pid set lets a test check they all died."""
    group = env._enforcement.group
    peak = [0]
    seen: set[int] = set()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            pids = group.pids()
            seen.update(pids)
            peak[0] = max(peak[0], len(pids))
            time.sleep(0.01)

    w = threading.Thread(target=watch)
    w.start()
    try:
        a = harness.attack(env, timeout_s=timeout_s)
    finally:
        stop.set()
        w.join()
    return a, peak[0], seen
