"""The epoch ticker (runner/environments/wasm/ticker.py): ticks during calls, lingers, parks."""

import os
import threading
import time

import pytest
import wasmtime

from runner.environments.wasm import ticker as ticker_module
from runner.environments.wasm.guest_io import GuestIO, OutputWindow


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture
def make_ticker():
    made = []

    def make(linger_s, monkeypatch):
        monkeypatch.setattr(ticker_module, "LINGER_S", linger_s)
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        made.append(ticker_module.EpochTicker(wasmtime.Engine(cfg)))
        return made[-1]

    yield make
    for ticker in made:
        ticker.stop()


def test_ticks_during_a_call_then_lingers_then_parks(make_ticker, monkeypatch):
    ticker = make_ticker(1.0, monkeypatch)
    assert wait_for(lambda: ticker._parked)  # an idle ticker waits, no ticks
    parked_at = ticker._epoch
    time.sleep(0.05)
    assert ticker._epoch == parked_at
    ticker.begin()
    assert not ticker._parked  # begin() woke it
    assert wait_for(lambda: ticker._epoch >= parked_at + 5)
    ticker.end()
    after_end = ticker._epoch
    # Still ticking just after the call (a next call would find it awake)...
    assert wait_for(lambda: ticker._epoch > after_end, timeout=0.5)
    # ...then parked once LINGER_S passed with no call.
    assert wait_for(lambda: ticker._parked, timeout=10.0)
    settled = ticker._epoch
    time.sleep(0.05)
    assert ticker._epoch == settled


def test_a_call_in_the_linger_window_needs_no_wake_up(make_ticker, monkeypatch):
    ticker = make_ticker(5.0, monkeypatch)
    ticker.begin()
    ticker.end()
    notified = []
    real_notify = ticker._cond.notify
    monkeypatch.setattr(ticker._cond, "notify", lambda *a: notified.append(1) or real_notify(*a))
    for _ in range(20):
        ticker.begin()
        ticker.end()
    assert notified == [] and not ticker._parked


def test_output_written_after_the_last_tick_is_cut_when_collected(tmp_path):
    io = GuestIO(str(tmp_path), str(tmp_path))
    try:
        window = OutputWindow(io, io.stdout_fd, 0, limit=10)
        os.pwrite(io.stdout_fd, b"x" * 25, 0)  # no tick saw it
        data, overflowed = window.collect(free=False)
        assert data == b"x" * 10 and overflowed
        assert os.fstat(io.stdout_fd).st_size == 10 and window.end == 10
    finally:
        io.close()


def test_a_finished_calls_guard_never_cuts_the_next_calls_output(make_ticker, monkeypatch, tmp_path):
    """A reactor's second call writes past where the first call's guard stood. If the ticker
    polled a guard it had listed before that call ended, it would cut the file back to the
    old limit and the second call's output would be lost (seen once under load in CI)."""
    ticker = make_ticker(5.0, monkeypatch)
    fd = os.open(tmp_path / "stderr", os.O_RDWR | os.O_CREAT, 0o600)
    first = ticker_module.Watched(fd, 100)
    second = ticker_module.Watched(fd, 300)
    real_sleep = time.sleep
    switched = []

    def sleep_then_switch(s):
        # The ticker sleeps between listing the guards and polling them: end the first call,
        # start the second and let it write, all inside that sleep.
        real_sleep(s)
        if not switched and threading.current_thread().name == "wasm-epoch":
            switched.append(True)
            ticker.end(first)
            ticker.begin(second)
            os.pwrite(fd, b"x" * 200, 0)

    ticker.begin(first)
    # (time is one module for everyone: the test's own waits go through this too, and pass.)
    monkeypatch.setattr(ticker_module.time, "sleep", sleep_then_switch)
    assert wait_for(lambda: switched)
    epoch = ticker._epoch
    assert wait_for(lambda: ticker._epoch >= epoch + 3)  # several polls since the switch
    assert os.fstat(fd).st_size == 200 and not first.overflowed
    ticker.end(second)
    os.close(fd)
