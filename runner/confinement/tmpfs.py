"""Size-capped tmpfs mounts for guests whose /tmp is a host directory (the wasm runtime).

Python and Node guests get their /tmp from bubblewrap (`--size N --tmpfs /tmp`, inside their
own mount namespace). A wasm guest runs inside the server process: wasmtime's WASI layer opens
and writes the preopened /tmp directory with the server's own system calls, so a plain
directory there would let one guest fill whatever disk holds it (issue 17: a guest with
ephemeral_storage_mb=10 wrote 64 MB and filled the data directory). `mount_capped()` puts a
tmpfs of the environment's size on that directory instead: a write past it fails inside the
guest with ENOSPC (WASI's `nospc`), and nothing reaches the data directory's disk.

Why a mount per environment and not one shared tmpfs: the cap is per environment (Lambda's
ephemeral storage is per environment), and a shared one would let one guest's files use up
another's space. Cost measured here: mount ~15 us at start, umount ~70 us at teardown.

Mounting needs CAP_SYS_ADMIN in the server's mount namespace (root, or a container that grants
it). Where it is refused, `mount_capped()` returns False once with a warning naming the cause,
and the environment keeps the plain directory: /tmp still works but is bounded only by the
disk (docs/security.md says so; `runner doctor` shows the row).

Safety: the mount carries nosuid, nodev and noexec (the guest cannot exec anything anyway;
these keep the host from doing so through it by mistake), mode 0700 and the server's uid.
Mounts are detached lazily (MNT_DETACH) so a descriptor the host still holds cannot make a
teardown fail. A server killed with SIGKILL leaves its mounts behind; their directories carry the
server's pid (stale.py's naming), and `sweep()` lazily unmounts and removes those of dead
servers at the next start.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import shutil
import tempfile
import threading

from runner.confinement.stale import dead_owner_entries

log = logging.getLogger(__name__)

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_state_lock = threading.Lock()
_refused: str | None = None  # why mounting failed once; then nobody tries again


def size_bytes(ephemeral_storage_mb: int, memory_mb: int) -> int:
    """The cap: the function's ephemeral storage, but never more than its memory, because a
    tmpfs lives in RAM (the server's memory), and a guest may not hold more RAM than that."""
    return min(ephemeral_storage_mb, memory_mb) * 1024 * 1024


def refused() -> str | None:
    """Why capped /tmp mounts are off in this process, or None while they work (or were not
    tried yet)."""
    return _refused


def mount_capped(path: str, size: int) -> bool:
    """Mount a tmpfs of `size` bytes on the existing empty directory `path`. True when it is
    mounted; False (with one warning per process) when this host does not allow it."""
    global _refused
    if _refused is not None:
        return False
    opts = f"size={size},mode=0700,uid={os.getuid()},gid={os.getgid()}".encode()
    if _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   opts) == 0:
        return True
    err = ctypes.get_errno()
    if err not in (errno.EPERM, errno.EACCES, errno.ENOSYS, errno.ENODEV):
        raise OSError(err, f"mounting a tmpfs for a wasm guest's /tmp on {path}: "
                           f"{os.strerror(err)}")
    with _state_lock:
        if _refused is None:
            _refused = os.strerror(err)
            log.warning(
                "wasm /tmp is NOT capped at ephemeral_storage_mb: mounting a tmpfs was refused "
                "(%s; it needs CAP_SYS_ADMIN). A wasm guest can fill the disk of the work "
                "directory; run the server as root or with CAP_SYS_ADMIN to cap it.", _refused)
    return False


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """Why capped /tmp mounts cannot work in this process (for `runner doctor`), or None: one
    real mount and umount of a 1 MiB tmpfs on a temporary directory."""
    d = tempfile.mkdtemp(prefix="runner-tmpfs-probe-")
    try:
        opts = b"size=1048576,mode=0700"
        if _libc.mount(b"tmpfs", os.fsencode(d), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       opts) != 0:
            return (f"mount(2) of a tmpfs refused ({os.strerror(ctypes.get_errno())}); run the "
                    "server as root or with CAP_SYS_ADMIN")
        _libc.umount2(os.fsencode(d), MNT_DETACH)
        return None
    finally:
        os.rmdir(d)


def unmount(path: str) -> None:
    """Detach the tmpfs on `path` (its pages are freed once nothing holds a file open there)."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more): nothing to do
            log.warning("could not unmount a wasm guest's /tmp at %s: %s", path, os.strerror(err))


def sweep(directory: str, prefix: str) -> int:
    """Unmount and remove what killed servers left in `directory`: entries named
    `<prefix><pid>-...` (stale.py's convention) whose pid no longer runs. How many."""
    names = dead_owner_entries(directory, prefix)
    for name in names:
        path = os.path.join(directory, name)
        unmount(path)
        shutil.rmtree(path, ignore_errors=True)
    return len(names)
