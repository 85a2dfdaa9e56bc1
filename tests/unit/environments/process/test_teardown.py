"""environments/process/teardown.py: the background half of destroying an environment."""

from __future__ import annotations

import logging
import threading

from runner.environments.process import teardown


def test_jobs_run_off_the_callers_thread_and_drain_waits_for_them():
    release = threading.Event()
    ran_on = []

    def job():
        ran_on.append(threading.get_ident())
        release.wait(10)

    teardown.submit(job, "a test job")
    assert not teardown.drain(0.05)  # still running: submit() did not wait for it
    release.set()
    assert teardown.drain(10.0) and teardown.pending() == 0
    assert ran_on and ran_on[0] != threading.get_ident()


def test_a_failing_job_is_logged_and_does_not_stop_the_others(caplog):
    done = []

    def bad():
        raise OSError("rmdir: busy")

    with caplog.at_level(logging.ERROR, logger=teardown.__name__):
        teardown.submit(bad, "a broken environment")
        teardown.submit(lambda: done.append(1), "a good one")
        assert teardown.drain(10.0)
    assert done == [1]
    assert "tearing down a broken environment failed" in caplog.text
