"""confinement/tmpfs.py: capped tmpfs mounts for wasm guests' /tmp, their sweep, the fallback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from runner.confinement import tmpfs
from tests.conftest import ROOT

MiB = 1024 * 1024
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def test_size_is_the_ephemeral_storage_capped_at_the_memory():
    assert tmpfs.size_bytes(10, 128) == 10 * MiB
    assert tmpfs.size_bytes(512, 128) == 128 * MiB


@needs_root
def test_a_write_past_the_cap_is_enospc(tmp_path):
    d = tmp_path / "tmp-1"
    d.mkdir()
    assert tmpfs.mount_capped(str(d), 2 * MiB)
    try:
        assert os.path.ismount(d)
        with pytest.raises(OSError) as info, open(d / "big", "wb") as f:
            for _ in range(4):
                f.write(bytes(MiB))
                f.flush()
        assert info.value.errno == errno.ENOSPC
        assert os.path.getsize(d / "big") <= 2 * MiB
    finally:
        tmpfs.unmount(str(d))
    assert not os.path.ismount(d) and not os.path.exists(d / "big")


@needs_root
def test_sweep_unmounts_and_removes_only_dead_servers_directories(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale, own = tmp_path / f"tmp-{dead}-fn-x", tmp_path / f"tmp-{os.getpid()}-fn-y"
    for d in (stale, own):
        d.mkdir()
        assert tmpfs.mount_capped(str(d), MiB)
    try:
        assert tmpfs.sweep(str(tmp_path), "tmp-") == 1
        assert not stale.exists()
        assert os.path.ismount(own)  # this process's own environment is left alone
    finally:
        tmpfs.unmount(str(own))


def test_without_cap_sys_admin_it_falls_back_with_one_warning(tmp_path):
    # A real process without CAP_SYS_ADMIN over the host's mount namespace (it runs in a user
    # namespace of its own, so mount(2) there is refused): the caller gets False and keeps the
    # plain directory, and the warning says what is lost and how to get it back.
    script = (
        "import logging, os, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "from runner.confinement import tmpfs\n"
        f"a, b = {str(tmp_path / 'a')!r}, {str(tmp_path / 'b')!r}\n"
        "os.mkdir(a); os.mkdir(b)\n"
        "print(tmpfs.mount_capped(a, 1 << 20), tmpfs.mount_capped(b, 1 << 20), tmpfs.refused())\n")
    done = subprocess.run(["unshare", "--user", sys.executable, "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    if "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here to drop CAP_SYS_ADMIN: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["False", "False"]
    assert done.stderr.count("wasm /tmp is NOT capped") == 1
    assert "CAP_SYS_ADMIN" in done.stderr
