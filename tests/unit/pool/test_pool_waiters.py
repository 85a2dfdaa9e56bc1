"""pool.py's waiting for the first environment (decision 081): a cold start that begins while
another invocation of the version is busy runs in the background, and the invocation takes
whichever comes first, a released environment or a finished start."""

import threading
import time

import pytest

from runner.environments.fake import FakeBackend
from runner.errors import FunctionInitError, InternalError, TooManyRequests
from runner.model import FunctionConfig, FunctionVersion
from runner.pool.base import InitFailure
from runner.pool.pool import PoolManager


def version(**cfg):
    return FunctionVersion("f", "$LATEST", 1, FunctionConfig("python", "app.handler", **cfg),
                           "d", "/nonexistent")


@pytest.fixture
def backend():
    b = FakeBackend()
    b.slow_start = True  # as a process-launching backend (Node.js)
    return b


@pytest.fixture
def pool(backend):
    p = PoolManager({"python": backend}, idle_ttl_s=60, prestart=False)
    yield p
    p.close()


def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def waiting_acquire(pool, v):
    """acquire() in a thread; returns (thread, box) where box gets the result or the error."""
    box: list = []

    def run():
        try:
            box.append(pool.acquire(v))
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, box


def counts(pool, v):
    return pool.stats()["versions"][v.key]


def test_a_waiting_call_takes_an_environment_released_before_its_start_finished(pool, backend):
    v = version()
    first = pool.acquire(v)
    assert first.cold  # nothing busy or starting: started in the caller's thread
    backend.start_gate = threading.Event()
    t, box = waiting_acquire(pool, v)
    until(lambda: counts(pool, v)["starting"] == 1, "the background start")
    pool.release(first, reusable=True)
    t.join(10)
    lease = box[0]
    assert lease.env is first.env and not lease.cold
    now = counts(pool, v)
    assert (now["busy"], now["starting"], now["idle"]) == (1, 1, 0)
    backend.start_gate.set()  # the start it triggered finishes and joins the idle list
    until(lambda: counts(pool, v)["idle"] == 1, "the started environment to go idle")
    assert counts(pool, v)["starting"] == 0 and backend.created == 2
    assert counts(pool, v)["cold_starts"] == 1 and counts(pool, v)["inits"] == 2


def test_a_finished_start_serves_the_oldest_waiter(pool, backend):
    v = version()
    busy = pool.acquire(v)
    backend.start_gate = threading.Event()
    t1, box1 = waiting_acquire(pool, v)
    until(lambda: counts(pool, v)["starting"] == 1, "the first background start")
    t2, box2 = waiting_acquire(pool, v)
    until(lambda: counts(pool, v)["starting"] == 2, "the second background start")
    backend.start_gate.set()
    t1.join(10), t2.join(10)
    assert box1[0].cold and box2[0].cold and backend.created == 3
    for lease in (busy, box1[0], box2[0]):
        pool.release(lease, reusable=True)
    assert counts(pool, v)["idle"] == 3 and counts(pool, v)["busy"] == 0


def test_the_concurrency_limit_counts_waiters_and_starts(pool, backend):
    v = version(concurrency=2)
    first = pool.acquire(v)
    backend.start_gate = threading.Event()
    t, box = waiting_acquire(pool, v)
    until(lambda: counts(pool, v)["starting"] == 1, "the background start")
    with pytest.raises(TooManyRequests, match=r"concurrency limit \(2\)"):
        pool.acquire(v)  # one busy, one waiting
    pool.release(first, reusable=True)  # handed to the waiter
    t.join(10)
    assert box[0].env is first.env
    # The start that lost its waiter is adopted by the next call: no third environment.
    t2, box2 = waiting_acquire(pool, v)
    until(lambda: len(pool._pools[v.key].waiters) == 1, "the adopting waiter")
    assert counts(pool, v)["starting"] == 1
    with pytest.raises(TooManyRequests, match=r"concurrency limit \(2\)"):
        pool.acquire(v)
    backend.start_gate.set()
    t2.join(10)
    assert box2[0].cold and backend.created == 2
    pool.release(box[0], reusable=True), pool.release(box2[0], reusable=True)
    assert counts(pool, v)["idle"] == 2 and counts(pool, v)["starting"] == 0


def test_an_init_failure_of_a_background_start_reaches_the_waiting_call(pool, backend):
    v = version()
    busy = pool.acquire(v)
    backend.init_error = "boom"
    t, box = waiting_acquire(pool, v)
    t.join(10)
    assert isinstance(box[0], InitFailure) and isinstance(box[0].error, FunctionInitError)
    assert counts(pool, v)["starting"] == 0 and counts(pool, v)["busy"] == 1
    pool.release(busy, reusable=True)


def test_a_platform_error_of_a_background_start_is_raised_in_the_waiting_call(
        pool, backend, monkeypatch):
    v = version()
    busy = pool.acquire(v)

    def broken(_version):
        raise InternalError("the host cannot start this runtime")

    monkeypatch.setattr(backend, "create", broken)
    t, box = waiting_acquire(pool, v)
    t.join(10)
    assert isinstance(box[0], InternalError) and counts(pool, v)["starting"] == 0
    pool.release(busy, reusable=True)


def test_a_retired_versions_waiter_gets_its_start_and_nothing_is_kept(pool, backend):
    v = version()
    first = pool.acquire(v)
    backend.start_gate = threading.Event()
    t, box = waiting_acquire(pool, v)
    until(lambda: counts(pool, v)["starting"] == 1, "the background start")
    pool.retire(v)
    pool.release(first, reusable=True)  # not live: destroyed, not handed on
    assert backend.destroyed == 1
    backend.start_gate.set()
    t.join(10)
    assert box[0].cold
    pool.release(box[0], reusable=True)
    assert backend.live == 0


def test_a_fast_starting_runtime_waits_for_its_own_start(pool, backend):
    backend.slow_start = False  # a fork or an instantiation (Python's zygote, wasm)
    v = version()
    first = pool.acquire(v)
    backend.start_gate = threading.Event()
    t, box = waiting_acquire(pool, v)
    until(lambda: counts(pool, v)["starting"] == 1, "the start")
    pool.release(first, reusable=True)  # parked idle: the start runs in the caller's thread
    assert counts(pool, v)["idle"] == 1 and not pool._pools[v.key].waiters
    backend.start_gate.set()
    t.join(10)
    assert box[0].cold and box[0].env is not first.env
