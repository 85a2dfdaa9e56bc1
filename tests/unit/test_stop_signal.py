"""runner/stop_signal.py: a burst of SIGTERMs stops the waiter; it never hangs.

The bug it guards against: `runner serve` set a threading.Event from its SIGTERM handler; a
second SIGTERM arriving while the first handler held the Event's lock deadlocked the main
thread (a cluster test's teardown, which signals twice, hung CI for good)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

WAITER = textwrap.dedent("""
    import sys
    from runner.stop_signal import StopSignal
    stop = StopSignal()
    print("ready", flush=True)
    stop.wait()
    print("stopped", flush=True)
""")


def _burst_then_wait(signals: int = 2000, deadline_s: float = 20.0) -> bool:
    """Start a waiter, send it a burst of SIGTERMs; True if it exited before the deadline."""
    proc = subprocess.Popen([sys.executable, "-c", WAITER], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(signals):
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
        try:
            proc.wait(timeout=deadline_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_a_burst_of_sigterm_always_stops_the_waiter():
    # The deadlock needs a signal inside the first handler's few microseconds, so a burst of
    # 2,000, repeated: a handler that can block on a lock would show it in one round of these.
    for _ in range(10):
        assert _burst_then_wait(), "the waiter hung after a burst of SIGTERM"


def test_wait_with_a_timeout_returns_false_without_a_signal_and_true_after_request():
    stop_code = textwrap.dedent("""
        import time
        from runner.stop_signal import StopSignal
        stop = StopSignal()
        t0 = time.monotonic()
        assert stop.wait(0.2) is False and not stop.is_set()
        assert time.monotonic() - t0 >= 0.19
        stop.request()
        assert stop.wait() is True and stop.is_set()
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", stop_code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

