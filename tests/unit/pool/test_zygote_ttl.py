"""The pool's reaper closes per-version snapshot processes (the Python zygote) nobody uses after
the zygote TTL (Backend.reap_idle, decision 086), and the next call is a cold start that
builds it again.

Verdicts never hang on a sleep being long enough: the TTL is judged against `now` passed to
the reaper, or the test waits (up to a generous deadline) for what must happen."""

import json
import os
import threading
import time

import psutil
import pytest

from runner.environments.base import InvokeRequest
from runner.environments.fake import FakeBackend
from runner.environments.python.runtime import PythonRuntime
from runner.environments.python.zygote import ZygoteBackend
from runner.model import FunctionConfig, FunctionVersion
from runner.pool.base import Lease
from runner.pool.pool import PoolManager

SRC = """
import time
INIT_AT = time.time()
print("init ran")
def handler(e, c):
    time.sleep(e.get("s", 0))
    return {"init_at": INIT_AT}
"""


def version(tmp_path, revision=1, **cfg):
    code = tmp_path / f"code{revision}"
    code.mkdir()
    (code / "app.py").write_text(SRC)
    return FunctionVersion("zt", "$LATEST", revision,
                           FunctionConfig("python", "app.handler", **cfg), "d", str(code))


def invoke(lease: Lease, payload: bytes = b"{}"):
    out = lease.env.invoke(InvokeRequest("r", payload, 10, time.monotonic() + 10, {}))
    assert out.error is None, out.error
    return json.loads(out.payload)


def eventually(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # killed, not yet waited
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def zb(tmp_path):
    b = ZygoteBackend(PythonRuntime(), str(tmp_path / "work"))
    os.makedirs(b.tmp_root)
    return b  # closed by the pool


def test_after_the_idle_ttl_the_zygote_goes_too_and_the_next_call_rebuilds_it(zb, tmp_path):
    pool = PoolManager({"python": zb}, idle_ttl_s=0.2, prestart=False)
    try:
        v = version(tmp_path)
        lease = pool.acquire(v)
        first = invoke(lease)
        zygote = lease.env.zygote
        pid = zygote.proc.pid
        pool.release(lease, reusable=True)
        # The reaper thread: the idle environment after 0.2 s, then the zygote (TTL defaults
        # to the idle TTL), with nothing of the version left running.
        assert eventually(lambda: pool.stats()["snapshots_reaped"] >= 1)
        assert not zygote.alive and exited(pid)
        lease = pool.acquire(v)
        assert lease.cold and lease.env.zygote is not zygote
        assert b"init ran" in lease.env.init_logs  # init ran again, and says so
        assert lease.env.init_duration_ms >= lease.env.zygote.init_ms
        assert invoke(lease)["init_at"] != first["init_at"]
        pool.release(lease, reusable=False)
    finally:
        pool.close()


def test_provisioned_and_busy_environments_keep_their_zygote(zb, tmp_path):
    pool = PoolManager({"python": zb}, idle_ttl_s=60, zygote_ttl_s=0.2, prestart=False)
    try:
        prov = version(tmp_path, 1, provisioned=1)
        busy = version(tmp_path, 2, timeout_s=10)
        assert pool.provision(prov) == 1
        lease = pool.acquire(busy)
        invoke(lease)
        done = threading.Event()
        worker = threading.Thread(target=lambda: (invoke(lease, b'{"s": 1.0}'), done.set()))
        worker.start()
        later = time.monotonic() + 3600
        pool.reap(now=later)  # the provisioned environment is exempt; the other one is lent
        assert pool.reap_snapshots(now=later) == 0
        assert {z.version.key for z in zb._zygotes.values()} == {prov.key, busy.key}
        worker.join(timeout=30)
        assert done.is_set()
        pool.release(lease, reusable=True)
        pool.reap(now=time.monotonic() + 3600)  # the busy version's environment, now idle

        def only_provisioned_left():
            # By this call or by the reaper thread (its zygote TTL is 0.2 s), whichever runs
            # first once the zygote reported its last child's exit.
            pool.reap_snapshots(now=time.monotonic() + 3600)
            return {z.version.key for z in zb._zygotes.values()} == {prov.key}

        assert eventually(only_provisioned_left)
    finally:
        pool.close()


def test_invocations_while_the_reaper_runs_with_a_ttl_of_zero_never_fail(zb, tmp_path):
    pool = PoolManager({"python": zb}, idle_ttl_s=0.05, zygote_ttl_s=0.0, prestart=False)
    try:
        v = version(tmp_path)
        errors: list = []

        def all_reaped():
            # With every lease back, the reaper thread takes the idle environments and then
            # the zygote, however loaded the host: the calls after this race with it again.
            # It may have done so already before the last thread got here (a loaded host
            # delays that thread, not the reaper), so wait for the zygote to be gone rather
            # than for the count to move after this point.
            assert eventually(lambda: v.key not in zb._zygotes)

        barrier = threading.Barrier(3, action=all_reaped, timeout=120)

        def calls(seed):
            for i in range(10):
                try:
                    if i in (3, 6):
                        barrier.wait()
                    lease = pool.acquire(v)
                    invoke(lease)
                    # Destroyed now and then: a version whose environments all went while the
                    # other threads start new ones from its zygote, as the reaper closes it.
                    pool.release(lease, reusable=(i + seed) % 3 == 0)
                    time.sleep(0.01 * ((i * 7 + seed) % 5))
                except Exception as exc:  # noqa: BLE001 (any failure is the finding)
                    errors.append(exc)

        threads = [threading.Thread(target=calls, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert errors == []
        assert pool.stats()["snapshots_reaped"] >= 2
    finally:
        pool.close()


class SnapshotBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def reap_idle(self, idle_s, now=None):
        self.asked.append(idle_s)
        return 2


def test_the_reaper_asks_backends_that_have_state_and_counts_what_they_closed():
    snap, plain = SnapshotBackend(), FakeBackend()  # the plain one has no reap_idle: skipped
    pool = PoolManager({"python": snap, "wasm": plain}, idle_ttl_s=60, zygote_ttl_s=7.0,
                       prestart=False)
    try:
        assert pool.reap_snapshots() == 2
        assert snap.asked[-1] == 7.0 and pool.stats()["snapshots_reaped"] >= 2
    finally:
        pool.close()
    default = PoolManager({"python": FakeBackend()}, idle_ttl_s=42, prestart=False)
    assert default.zygote_ttl_s == 42  # the idle TTL unless said otherwise
    default.close()
