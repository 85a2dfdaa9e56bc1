"""One runner per data directory (storage/data_dir.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runner.errors import ResourceConflict
from runner.storage.data_dir import DataDirLock

HOLD = """
import sys, time
from runner.storage.data_dir import DataDirLock
lock = DataDirLock(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ResourceConflict, match=f"in use by another runner \\(pid {holder.pid}\\)"):
            DataDirLock(str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: no cleanup runs; the kernel drops the flock with the process
    holder.wait()
    holder.stdout.close()
    with DataDirLock(str(tmp_path)) as lock, open(lock.path) as f:
        assert f.read().strip() == str(os.getpid())


def test_close_releases_and_is_idempotent(tmp_path):
    first = DataDirLock(str(tmp_path))
    with pytest.raises(ResourceConflict):
        DataDirLock(str(tmp_path))  # the same process is refused too: one owner per directory
    first.close()
    first.close()
    DataDirLock(str(tmp_path)).close()


def test_the_lock_descriptor_is_not_inherited(tmp_path):
    with DataDirLock(str(tmp_path)) as lock:
        assert not os.get_inheritable(lock._fd)
