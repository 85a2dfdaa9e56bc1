import threading
import time

import pytest

from runner.environments.base import InvokeRequest
from runner.environments.fake import FakeBackend
from runner.errors import FunctionInitError, FunctionTimeout, TooManyRequests
from runner.model import FunctionConfig, FunctionVersion
from runner.pool.base import InitFailure
from runner.pool.pool import PoolManager


def version(name="f", revision=1, **cfg):
    return FunctionVersion(name, "$LATEST", revision, FunctionConfig("python", "app.handler", **cfg), "d", "/nonexistent")


def request():
    return InvokeRequest("r", b"{}", 3, time.monotonic() + 3, {})


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def pool(backend):
    p = PoolManager({"python": backend}, idle_ttl_s=60)
    yield p
    p.close()


def test_cold_then_warm(pool, backend):
    v = version()
    a = pool.acquire(v)
    assert a.cold
    pool.release(a, reusable=True)
    b = pool.acquire(v)
    assert not b.cold and b.env is a.env
    assert backend.created == 1 and backend.prepared == [v.key]


def test_not_reusable_is_destroyed(pool, backend):
    v = version()
    a = pool.acquire(v)
    pool.release(a, reusable=False)
    assert backend.destroyed == 1
    assert pool.acquire(v).cold


def test_concurrency_limit(pool):
    v = version(concurrency=2)
    pool.acquire(v), pool.acquire(v)
    with pytest.raises(TooManyRequests, match="concurrency limit \\(2\\)"):
        pool.acquire(v)


def test_host_limit_evicts_lru_idle_of_other_version(backend):
    pool = PoolManager({"python": backend}, max_environments=2)
    try:
        a, b = version("a", 1), version("b", 2)
        la = pool.acquire(a)
        pool.release(la, True)
        lb = pool.acquire(b)
        pool.release(lb, True)
        lc = pool.acquire(version("c", 3))  # full: a's idle environment (LRU) is evicted
        assert lc.cold
        assert pool.idle_environments(a) == 0 and pool.idle_environments(b) == 1
        pool.acquire(b)  # warm
        with pytest.raises(TooManyRequests, match="maximum of 2"):
            pool.acquire(version("d", 4))
    finally:
        pool.close()


def test_idle_ttl_reaping(backend):
    pool = PoolManager({"python": backend}, idle_ttl_s=0.2)
    try:
        v = version()
        pool.release(pool.acquire(v), True)
        assert pool.reap(now=time.monotonic()) == 0
        assert pool.reap(now=time.monotonic() + 1) == 1
        assert backend.live == 0 and pool.acquire(v).cold
    finally:
        pool.close()


def test_reap_drops_idle_environments_whose_process_died(pool, backend):
    v = version()
    a, b = pool.acquire(v), pool.acquire(v)
    pool.release(a, True)
    pool.release(b, True)
    a.env.launched_alive = lambda: False  # killed from outside while idle
    b.env.launched_alive = lambda: True
    assert pool.reap(now=time.monotonic()) == 1  # well inside the TTL: only the dead one
    assert pool.stats()["versions"][v.key]["idle"] == 1 and backend.destroyed == 1
    lease = pool.acquire(v)
    assert lease.env is b.env and not lease.cold


def test_retiring_a_version_with_invocations_in_flight_frees_their_slots(backend):
    # The lease finds the retired record (no longer under the version's key) on release: the
    # host-wide count goes back down, or every update during traffic would leak capacity.
    pool = PoolManager({"python": backend}, idle_ttl_s=60, max_environments=2)
    try:
        v1, v2 = version(revision=1), version(revision=2)
        lease = pool.acquire(v1)
        pool.retire(v1)
        assert pool.stats()["total"] == 1
        pool.release(lease, True)
        assert pool.stats()["total"] == 0 and backend.live == 0  # destroyed, not kept
        pool.reap(now=time.monotonic())
        assert pool.stats()["versions"] == {}
        a, b = pool.acquire(v2), pool.acquire(v2)  # the whole host limit is usable again
        pool.release(a, True), pool.release(b, True)
    finally:
        pool.close()


def test_retiring_a_version_never_invoked_still_forgets_its_snapshots(pool, backend):
    # deploy prewarms (zygote, spares) without making a pool record
    v = version(revision=5)
    pool.retire(v)
    assert backend.forgotten == [v.key]


def test_reaper_thread_runs_on_its_own(backend):
    pool = PoolManager({"python": backend}, idle_ttl_s=0.1)
    try:
        pool.release(pool.acquire(version()), True)
        deadline = time.monotonic() + 5
        while backend.live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backend.live == 0
    finally:
        pool.close()


def test_retire_destroys_idle_now_and_busy_on_release(pool, backend):
    v = version(concurrency=5)
    idle = pool.acquire(v)
    busy = pool.acquire(v)
    pool.release(idle, True)
    pool.retire(v)
    assert backend.destroyed == 1 and backend.forgotten == [v.key]
    pool.release(busy, True)  # reusable, but its version is retired
    assert backend.destroyed == 2 and backend.live == 0


def test_init_failure_frees_the_slot(pool, backend):
    backend.init_error = "boom"
    v = version(concurrency=1)
    failure = pool.acquire(v)
    assert isinstance(failure, InitFailure) and isinstance(failure.error, FunctionInitError)
    backend.init_error = None
    assert pool.acquire(v).cold  # the failed start did not leak its concurrency slot


def test_concurrent_cold_starts_do_not_exceed_limit():
    backend = FakeBackend(init_delay_s=0.2)
    pool = PoolManager({"python": backend})
    v = version(concurrency=3)
    outcomes = []

    def go():
        try:
            outcomes.append(pool.acquire(v).cold)
        except TooManyRequests:
            outcomes.append("throttled")

    threads = [threading.Thread(target=go) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    pool.close()
    assert outcomes.count(True) == 3 and outcomes.count("throttled") == 3


def test_stats(pool):
    v = version()
    lease = pool.acquire(v)
    s = pool.stats()
    assert s["total"] == 1 and s["versions"][v.key]["busy"] == 1
    pool.release(lease, True)
    assert pool.stats()["versions"][v.key]["idle"] == 1


def test_fake_environment_reports_fatal_errors_unreusable(backend):
    def handler(event, ctx):
        raise FunctionTimeout.after(1)

    backend.handler = handler
    env = backend.create(version())
    env.start()
    out = env.invoke(request())
    assert out.error.error_type == "Sandbox.Timedout" and not out.reusable


def test_provisioned_environments_are_ready_and_kept(backend):
    pool = PoolManager({"python": backend}, idle_ttl_s=0.1)
    try:
        v = version(provisioned=2, concurrency=4)
        assert pool.provision(v) == 2
        a, b = pool.acquire(v), pool.acquire(v)
        assert not a.cold and not b.cold  # within the provisioned count: never cold
        pool.release(a, True), pool.release(b, True)
        assert pool.reap(now=time.monotonic() + 10) == 0  # the floor is exempt from the TTL
        c = pool.acquire(v)
        pool.release(c, reusable=False)  # lost (e.g. timeout): replaced in the background
        deadline = time.monotonic() + 5
        while pool.idle_environments(v) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.idle_environments(v) == 2
    finally:
        pool.close()


def test_extra_environments_above_the_floor_expire(backend):
    pool = PoolManager({"python": backend}, idle_ttl_s=60)
    try:
        v = version(provisioned=1, concurrency=4)
        pool.provision(v)
        leases = [pool.acquire(v) for _ in range(3)]
        assert [l.cold for l in leases] == [False, True, True]
        for l in leases:
            pool.release(l, True)
        assert pool.reap(now=time.monotonic() + 120) == 2
        assert pool.idle_environments(v) == 1
    finally:
        pool.close()


def test_memory_pressure_evicts_lru_idle_but_not_provisioned(backend, monkeypatch):
    pool = PoolManager({"python": backend})
    try:
        prov = version("p", 1, provisioned=1)
        pool.provision(prov)
        plain = version("q", 2)
        pool.release(pool.acquire(plain), True)
        monkeypatch.setattr(pool, "memory_pressure", lambda: True)
        assert pool.relieve_memory_pressure() == 1
        assert pool.idle_environments(plain) == 0 and pool.idle_environments(prov) == 1
    finally:
        pool.close()
