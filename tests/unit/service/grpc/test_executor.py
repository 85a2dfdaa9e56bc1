"""RenewingPool: a ThreadPoolExecutor that is replaced once a burst that grew it is over."""

import threading
import time
from concurrent import futures

import pytest

from runner.service.grpc import executor
from runner.service.grpc.executor import RenewingPool

WAIT_S = 10  # generous bound for things that must happen; never a speed assertion


def burst(pool, n):
    """Run n items at once; returns (release event, their futures) once all n have started."""
    release, started = threading.Event(), threading.Semaphore(0)

    def item(i):
        started.release()
        release.wait(WAIT_S)
        return i
    fs = [pool.submit(item, i) for i in range(n)]
    for _ in range(n):
        assert started.acquire(timeout=WAIT_S)
    return release, fs


def test_results_and_exceptions_reach_the_futures():
    with RenewingPool(4) as pool:
        assert pool.submit(lambda a, b=0: a + b, 2, b=3).result() == 5
        assert list(pool.map(lambda x: x * x, range(20))) == [x * x for x in range(20)]
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result()


def test_no_renewal_while_never_more_than_keep_in_flight():
    with RenewingPool(8, keep=2, quiet_s=0.01) as pool:
        first = pool._pool
        for _ in range(50):
            pool.submit(time.sleep, 0.001).result(WAIT_S)
        assert pool.renewals == 0 and pool._pool is first


class Clock:
    """Stands in for the executor module's `time`: monotonic() is what the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_renewed_after_a_burst_once_quiet_and_the_old_threads_go(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(executor, "time", clock)
    with RenewingPool(16, keep=2, quiet_s=1.0) as pool:
        release, fs = burst(pool, 6)
        old = pool._pool
        release.set()
        assert [f.result(WAIT_S) for f in fs] == list(range(6))
        clock.now += 0.9
        assert pool.submit(lambda: "quiet").result(WAIT_S) == "quiet"
        assert pool.renewals == 0  # not quiet for long enough yet
        clock.now += 0.2
        assert pool.submit(lambda: "after").result(WAIT_S) == "after"
        assert pool.renewals == 1 and pool._pool is not old
        deadline = time.monotonic() + WAIT_S
        while any(t.is_alive() for t in old._threads):  # the burst's six threads exit
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Quiet since, however long: no further renewal until another burst.
        clock.now += 60
        pool.submit(print, end="").result(WAIT_S)
        assert pool.renewals == 1


def test_an_item_running_in_the_old_pool_still_delivers():
    with RenewingPool(16, keep=2, quiet_s=0.05) as pool:
        release, fs = burst(pool, 4)
        slow_release = threading.Event()
        slow = pool.submit(lambda: slow_release.wait(WAIT_S) and "slow done")
        release.set()
        for f in fs:
            f.result(WAIT_S)
        time.sleep(0.1)  # one item in flight (the slow one): at most keep, so quiet
        assert pool.submit(lambda: "new").result(WAIT_S) == "new"
        assert pool.renewals == 1
        slow_release.set()
        assert slow.result(WAIT_S) == "slow done"


def test_a_submit_that_meets_a_just_renewed_pool_goes_to_the_new_one():
    pool = RenewingPool(2)
    fresh = futures.ThreadPoolExecutor(2)

    class JustRenewed:
        """Stands for a pool replaced between submit()'s read and its call."""

        def submit(self, *a, **k):
            pool._pool = fresh
            raise RuntimeError("cannot schedule new futures after shutdown")

        def shutdown(self, *a, **k):
            pass
    pool._pool = JustRenewed()
    try:
        assert pool.submit(lambda: "landed").result(WAIT_S) == "landed"
    finally:
        pool.shutdown()


def test_shutdown_waits_and_refuses_new_work():
    pool = RenewingPool(2)
    f = pool.submit(time.sleep, 0.05)
    pool.shutdown(wait=True)
    assert f.done()
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_max_workers_is_validated():
    with pytest.raises(ValueError, match="max_workers"):
        RenewingPool(0)
