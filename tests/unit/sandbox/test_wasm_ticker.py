"""The epoch ticker (runner/sandbox/wasm_ticker.py): ticks during calls, lingers, parks."""

import os
import time

import pytest
import wasmtime

from runner.sandbox import wasm_ticker
from runner.sandbox.wasm_io import GuestIO, OutputWindow


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
        monkeypatch.setattr(wasm_ticker, "LINGER_S", linger_s)
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        made.append(wasm_ticker.EpochTicker(wasmtime.Engine(cfg)))
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
