"""A seccomp filter for subprocess guests: the kernel calls a function never needs.

Anchored on Docker's default profile, as a deny list: everything a Python or Node.js guest
does stays allowed, and the calls below fail with EPERM (ENOSYS for clone3, so that glibc
falls back to clone, whose flags the filter can read). Why each group is denied:

| calls | why |
|---|---|
| unshare, setns, clone with a CLONE_NEW* flag, clone3 | new namespaces: `unshare -Ur` gave a guest root in a user namespace, and with it mount and much more kernel surface |
| mount, umount2, pivot_root, chroot, fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, mount_setattr | changing the file-system view the sandbox built |
| io_uring_setup, io_uring_enter, io_uring_register | a large, often-exploited kernel surface; libuv falls back to its thread pool |
| add_key, request_key, keyctl | kernel keyrings are not namespaced |
| bpf, perf_event_open, userfaultfd | kernel programs, hardware counters, and a tool to widen race windows in exploits |
| ptrace, process_vm_readv, process_vm_writev, kcmp | reading or steering other processes of the same uid |
| kexec_load, kexec_file_load, reboot, init_module, finit_module, delete_module, create_module, query_module, get_kernel_syms | replacing the kernel or loading code into it |
| settimeofday, clock_settime, clock_adjtime, stime | the host's clock |
| swapon, swapoff, acct, quotactl, nfsservctl, uselib, ustat, sysfs, _sysctl, lookup_dcookie, name_to_handle_at, open_by_handle_at, iopl, ioperm, vm86, vm86old | host administration, obsolete interfaces, and handles that bypass mount-namespace checks |

Calls for another architecture (i386 via int 0x80 on x86_64, x32) kill the process: libseccomp's
filter checks the architecture first, so the compat table cannot be used to go around it.

The filter is compiled by libseccomp (Debian's libseccomp2, which apt itself depends on),
through ctypes, once per server process, and handed to bubblewrap (`--seccomp FD`, via
gate.Gate), which loads it as the last step before exec'ing the runtime: no guest
instruction runs unfiltered, and everything forked later (zygote children, a guest's own
children) inherits it. WebAssembly guests need none: they run in the server process and can
make no system call of their own (WASI is the host's code).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import logging
import os

log = logging.getLogger(__name__)

DENIED = (
    "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "add_key", "request_key", "keyctl",
    "bpf", "perf_event_open", "userfaultfd",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module", "delete_module",
    "create_module", "query_module", "get_kernel_syms",
    "settimeofday", "clock_settime", "clock_adjtime", "stime",
    "swapon", "swapoff", "acct", "quotactl", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
    "lookup_dcookie", "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm", "vm86", "vm86old",
)
# clone(2) with any of these flags makes a namespace (linux/sched.h); plain fork and thread
# creation use none of them. clone's flags are its first argument on x86_64 and aarch64.
CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWTIME": 0x00000080, "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
}

# libseccomp's constants (seccomp.h), stable across its 2.x releases.
_ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000
_CMP_NE = 1
_CMP_MASKED_EQ = 7


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _errno_action(code: int) -> int:
    return _ACT_ERRNO | (code & 0xFFFF)


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def problem() -> str | None:
    """Why no filter can be built on this host, or None when it can."""
    try:
        program()
    except OSError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=1)
def program() -> bytes:
    """The compiled filter: a BPF program (struct sock_filter[]) as bwrap's --seccomp reads
    it. Built once per process. Raises OSError naming the cause when libseccomp is missing or
    refuses a rule."""
    return _build(None)


# --- issue 24: per-environment namespaces (docs/decisions/068) --------------------------------
# A Python zygote's children each enter fresh user, mount, PID and IPC namespaces as they are
# cloned (guest/python_zygote.py). The zygote's filter therefore differs from the guest filter
# in two places, and nowhere else:
# * clone with CLONE_NEW* flags is allowed when its fifth argument carries `cookie`, a random
#   64-bit value the host draws per zygote and sends only after the function's init returned
#   (with the fork requests). clone ignores that register unless CLONE_SETTLS (x86_64) or
#   CLONE_CHILD_* (aarch64) is set, and the zygote sets neither. Init code, which runs in the
#   zygote, cannot know the value, so it still cannot make a namespace.
# * mount is allowed: the child mounts its own /tmp before it loads the guest filter. Without
#   a user namespace of its own the caller has no capability, so for init code mount still
#   fails (EPERM from the capability check, before any file-system code runs).
# Each child then loads program() on top (filters stack; the strictest answer wins), so guest
# code in an environment runs under exactly the guest filter.
ZYGOTE_ALLOWED = ("mount",)
CLONE_COOKIE_ARG = 4
# Only these namespace flags pass with the cookie (environments/python/guest/python_envns.py);
# a network, cgroup, UTS or time namespace stays refused even with it. And mount only with
# exactly MS_NOSUID | MS_NODEV, the flags of the child's own /tmp and /dev/shm mounts.
ZYGOTE_CLONE_FLAGS = ("CLONE_NEWUSER", "CLONE_NEWNS", "CLONE_NEWIPC", "CLONE_NEWPID")
ZYGOTE_MOUNT_FLAGS = 0x2 | 0x4


def zygote_program(cookie: int) -> bytes:
    """The zygote's filter: program() with the two exceptions above. Built per zygote (a few
    milliseconds, beside the zygote's own start of tens). Raises OSError like program()."""
    if not 0 < cookie < 1 << 64:
        raise ValueError("cookie must be a non-zero 64-bit value")
    return _build(cookie)


def _build(cookie: int | None) -> bytes:
    lib = _library()
    if lib is None:
        raise OSError("libseccomp not found (apt-get install libseccomp2)")
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        for name in DENIED:
            if cookie is not None and name in ZYGOTE_ALLOWED:
                continue
            _deny(lib, ctx, name, _errno_action(errno.EPERM))
        # clone3 passes its flags in a struct the filter cannot read: refuse it as absent, and
        # glibc (and libuv) fall back to clone, where the flags are an argument.
        _deny(lib, ctx, "clone3", _errno_action(errno.ENOSYS))
        nr = lib.seccomp_syscall_resolve_name(b"clone")
        if cookie is not None:
            rc = lib.seccomp_rule_add_array(
                ctx, _errno_action(errno.EPERM), lib.seccomp_syscall_resolve_name(b"mount"), 1,
                ctypes.byref(_ArgCmp(3, _CMP_NE, ZYGOTE_MOUNT_FLAGS, 0)))
            if rc < 0:
                raise OSError(-rc, f"seccomp: cannot add the mount flags rule: {os.strerror(-rc)}")
        for name, flag in CLONE_NAMESPACE_FLAGS.items():
            cmps = (_ArgCmp * 2)(_ArgCmp(0, _CMP_MASKED_EQ, flag, flag))
            count = 1
            if cookie is not None and name in ZYGOTE_CLONE_FLAGS:
                # denied unless the cookie rides along (see zygote_program)
                cmps[1] = _ArgCmp(CLONE_COOKIE_ARG, _CMP_NE, cookie, 0)
                count = 2
            rc = lib.seccomp_rule_add_array(ctx, _errno_action(errno.EPERM), nr, count, cmps)
            if rc < 0:
                raise OSError(-rc, f"seccomp: cannot add the clone flag rule: {os.strerror(-rc)}")
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _deny(lib: ctypes.CDLL, ctx: int, name: str, action: int) -> None:
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr < 0:
        return  # no such call on this architecture (e.g. vm86 on aarch64): nothing to deny
    rc = lib.seccomp_rule_add_array(ctx, action, nr, 0, None)
    if rc < 0:
        raise OSError(-rc, f"seccomp: cannot deny {name}: {os.strerror(-rc)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    # seccomp_export_bpf writes to a descriptor: a pipe's buffer (64 KiB) holds any program
    # of this size (a few hundred instructions of 8 bytes), so the write cannot block.
    r, w = os.pipe()
    try:
        rc = lib.seccomp_export_bpf(ctx, w)
        os.close(w)
        w = -1
        if rc < 0:
            raise OSError(-rc, f"seccomp_export_bpf: {os.strerror(-rc)}")
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def program_fd(data: bytes | None = None) -> int:
    """A fresh pipe's read end holding the filter (`data`, by default program()), for one
    bwrap (which reads it to EOF).
    One per spawn: a shared descriptor would share its read offset between children.
    O_CLOEXEC (os.pipe's default): only the child's copy, passed explicitly, is inherited."""
    data = program() if data is None else data
    r, w = os.pipe()
    try:
        os.write(w, data)  # fits the pipe's buffer (see _export): never blocks
    finally:
        os.close(w)
    return r
