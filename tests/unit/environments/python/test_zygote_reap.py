"""A zygote with no environment left is closed after its TTL, and rebuilt by the next cold
start (ZygoteBackend.reap_idle, decision 086).

The TTL is judged against `now` passed in (time.monotonic() plus an offset), never against a
sleep, so a busy machine gives the same verdicts."""

import json
import random
import time

import psutil
import pytest

from tests.unit.environments.python.test_zygote import (  # noqa: F401 (fixture)
    RANDOM_SRC,
    backend,
    call,
    started,
    version,
)

TTL = 0.2


def later(seconds: float = TTL + 1.0) -> float:
    return time.monotonic() + seconds


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether `pid` has exited (or is a zombie nobody has reaped yet) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def wait_children(zygote, n: int, timeout: float = 10.0) -> None:
    """A destroyed environment's exit reaches the host when the zygote reaps it (background)."""
    deadline = time.monotonic() + timeout
    while zygote.live_children() != n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert zygote.live_children() == n


def test_a_zygote_without_children_is_closed_and_the_next_cold_start_rebuilds_it(backend, tmp_path):
    v = version(tmp_path, RANDOM_SRC)
    env = started(backend, v)
    first = json.loads(call(env).payload)
    zygote, _ = backend.zygote(v)
    pid = zygote.proc.pid
    env.destroy()
    wait_children(zygote, 0)
    assert backend.reap_idle(TTL, now=time.monotonic()) == 0  # just handed out: not idle yet
    assert backend.reap_idle(TTL, now=later()) == 1
    assert gone(pid) and not zygote.alive
    # The next cold start builds a new zygote: init runs again, and its Init Duration says so.
    again = started(backend, v)
    assert again.zygote is not zygote and again.zygote.alive
    assert again.init_logs == b"init once\n"
    assert again.init_duration_ms >= again.zygote.init_ms
    out = call(again)
    assert out.error is None and json.loads(out.payload)["init_at"] != first["init_at"]
    again.destroy()


@pytest.mark.parametrize("state", ["idle", "busy"])
def test_a_zygote_with_a_live_environment_is_kept(backend, tmp_path, state):
    import threading

    v = version(tmp_path, "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n"
                          "    return 'done'\n", timeout_s=10)
    env = started(backend, v)
    assert call(env).error is None
    result = {}
    worker = None
    if state == "busy":
        worker = threading.Thread(target=lambda: result.setdefault(
            "out", call(env, b'{"s": 1.0}', timeout=10)))
        worker.start()
    zygote, _ = backend.zygote(v)
    assert backend.reap_idle(TTL, now=later(3600)) == 0
    assert zygote.alive and psutil.pid_exists(zygote.proc.pid)
    if worker is not None:
        worker.join(timeout=20)
        assert result["out"].error is None and json.loads(result["out"].payload) == "done"
    assert call(env).error is None  # still served by the same environment
    env.destroy()
    wait_children(zygote, 0)
    assert backend.reap_idle(TTL, now=later(3600)) == 1


def test_a_launched_spare_keeps_its_zygote(backend, tmp_path):
    # A pre-started spare (pool/prestart.py) is a child forked and handshaken, waiting READY.
    v = version(tmp_path, RANDOM_SRC)
    spare = backend.create(v)
    spare.launch()
    zygote = spare.zygote
    assert backend.reap_idle(TTL, now=later(3600)) == 0 and zygote.alive
    spare.start()
    assert call(spare).error is None
    spare.destroy()


def test_a_held_zygote_is_not_reaped_until_released(backend, tmp_path):
    # The window between a cold start's hand-out and its fork (ZygoteEnvironment).
    v = version(tmp_path, RANDOM_SRC)
    zygote, _ = backend.zygote(v, hold=True)
    assert backend.reap_idle(0.0, now=later(3600)) == 0 and zygote.alive
    backend.release(zygote)
    assert backend.reap_idle(0.0, now=later(3600)) == 1 and not zygote.alive


def test_a_forgotten_or_discarded_zygote_is_not_reaped_twice(backend, tmp_path):
    v = version(tmp_path, RANDOM_SRC)
    zygote, _ = backend.zygote(v)
    backend.discard(v, zygote)
    assert backend.reap_idle(0.0, now=later()) == 0
    backend.zygote(v)
    backend.forget(v)
    assert backend.reap_idle(0.0, now=later()) == 0


def test_reaping_while_environments_start_never_fails_one(backend, tmp_path):
    """The race: cold starts fork while a reaper with a TTL of 0 runs in a loop. Each start
    either finds the zygote (held: not reaped) or builds a new one; none fails."""
    import threading

    v = version(tmp_path, "def handler(e, c):\n    return 1\n")
    stop = threading.Event()
    reaped = []

    def reaper():
        while not stop.is_set():
            reaped.append(backend.reap_idle(0.0))

    def reaped_meanwhile():
        # Run by the last worker at the barrier, with every environment destroyed: the reaper
        # closes the zygote within moments (so the test sees reaps however loaded the host),
        # and the workers' next starts race with the reaper again.
        deadline = time.monotonic() + 30
        while backend._zygotes.get(v.key) is not None and time.monotonic() < deadline:
            time.sleep(0.01)

    barrier = threading.Barrier(3, action=reaped_meanwhile, timeout=120)

    def starts(errors, seed):
        rng = random.Random(seed)
        for i in range(8):
            if i in (2, 5):
                barrier.wait()
            try:
                env = started(backend, v)
                out = call(env, timeout=10)
                if out.error is not None:
                    errors.append(out.error)
                pid = env.pid
                env.destroy()
                gone(pid)  # then a moment with no child: the reaper gets its chances
                time.sleep(rng.uniform(0, 0.03))
            except Exception as exc:  # noqa: BLE001 (any failure is the test's finding)
                errors.append(exc)

    errors: list = []
    r = threading.Thread(target=reaper)
    workers = [threading.Thread(target=starts, args=(errors, i)) for i in range(3)]
    r.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    stop.set()
    r.join(timeout=10)
    assert errors == []
    assert sum(reaped) >= 2  # the reaper did close zygotes in between (at least at the barriers)
