"""Per-environment namespaces for the zygote's children (issue 24; docs/decisions/068).

The zygote (python_zygote.py) clones each environment into fresh user, mount, PID and IPC
namespaces instead of fork()ing it into its own, and the child, before it runs anything else:

1. maps its own uid and gid into its new user namespace (the only mapping an unprivileged
   process may write; "deny" to setgroups first, as the kernel requires);
2. mounts a private tmpfs on /tmp (holding a copy of whatever the function's init left in the
   zygote's /tmp, usually nothing) and one on /dev/shm (POSIX shared memory is files there, not
   part of the IPC namespace);
3. scopes itself with Landlock (abstract Unix sockets and signals: a sibling's abstract socket
   lives in the same network namespace, and only this keeps it out of reach; kernel >= 6.12);
4. drops every capability the new user namespace gave it, and
5. loads the guest seccomp filter on top of the zygote's (filters stack and cannot be removed):
   from here it denies new namespaces, mount, ptrace... exactly as for a spawned guest.

Why this is safe to do in Python after a raw clone: the zygote is single-threaded (it refuses
to fork otherwise), and clone() is called with the GIL held, bracketed by PyOS_BeforeFork /
PyOS_AfterFork_Child / PyOS_AfterFork_Parent, which is what os.fork() itself does around
glibc's fork(). What glibc's fork() does on top (at-fork handlers, resetting locks other
threads held) has nothing to act on in a single-threaded process.

What each environment gains: its own /tmp and /dev/shm; its own PID numbering (it is PID 1:
kill() and ptrace cannot name a sibling or the zygote, and its own children die with it);
its own System V IPC; a user namespace of its own, so the kernel refuses it ptrace-level access
(/proc/<pid>/environ, fd, mem, maps) to a sibling even at the same uid. /proc itself stays the
zygote's mount (a fresh procfs cannot be mounted under bwrap's locked /proc covers), so a
sibling's pid and command line remain listed there, readable as on any Linux host.
"""

import ctypes
import os
import stat

NEWNS = 0x00020000
NEWIPC = 0x08000000
NEWUSER = 0x10000000
NEWPID = 0x20000000
FLAGS = NEWUSER | NEWNS | NEWIPC | NEWPID
SIGCHLD = 17
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
SYS_LANDLOCK_CREATE_RULESET = 444  # the same numbers on x86_64 and aarch64 (asm-generic)
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_SCOPE = 0x1 | 0x2  # ABSTRACT_UNIX_SOCKET | SIGNAL (Landlock ABI 6)
MS_NOSUID, MS_NODEV = 0x2, 0x4
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, PR_CAPBSET_DROP = 38, 22, 2, 24
CAP_V3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
# PyDLL: the call keeps the GIL, so no other Python code runs between clone and the
# after-fork hooks, exactly as in os.fork().
_pylibc = ctypes.PyDLL(None, use_errno=True)
_pylibc.syscall.restype = ctypes.c_long
_libc.syscall.restype = ctypes.c_long
# Looked up here, in the zygote: ctypes makes a function object on first attribute access,
# which a child would otherwise allocate for itself.
_libc.prctl, _libc.capset, _pylibc.syscall  # noqa: B018
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]


class _Ruleset(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class Config:
    """What the host sent in its `ns` message: the clone cookie the zygote's filter expects,
    the guest filter each child loads, and the size of each child's /tmp. Everything a child
    needs is built here, once, in the zygote: a child then shares it instead of allocating
    its own copies (each object a child creates dirties a page it shared with the zygote)."""

    def __init__(self, msg):
        self.cookie = int(msg["cookie"])
        self.filter = bytes(msg.get("filter") or b"")
        self.tmp_bytes = int(msg["tmp_bytes"])
        uid = os.getuid()  # before the clone: inside an unmapped namespace it reads 65534
        gid = os.getgid()
        self.uid_map = ("%d %d 1" % (uid, uid)).encode()
        self.gid_map = ("%d %d 1" % (gid, gid)).encode()
        self.tmpfs_data = ("size=%d,mode=1777" % self.tmp_bytes).encode()
        self.prog = _Fprog(len(self.filter) // 8, self.filter) if self.filter else None
        self.landlock = _Ruleset(0, 0, LANDLOCK_SCOPE) if landlock_abi() >= 6 else None
        with open("/proc/sys/kernel/cap_last_cap") as f:
            self.caps = range(int(f.read()) + 1)
        self.cap_header = _CapHeader(CAP_V3, 0)
        self.cap_data = (_CapData * 2)()


def landlock_abi():
    return _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                         ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))


def clone(cfg):
    """fork(), but the child starts in new namespaces (FLAGS). Returns 0 in the child and the
    child's pid (in the zygote's PID namespace) in the zygote; raises OSError."""
    if SYS_CLONE is None:
        raise OSError(0, "per-environment namespaces: unsupported architecture " + os.uname().machine)
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    # clone(flags, stack=0 (the child runs on a copy of this stack, as after fork), parent_tid,
    # child_tid/tls, tls/child_tid): the fifth argument carries the cookie; without
    # CLONE_SETTLS / CLONE_CHILD_* the kernel never reads it (seccomp.zygote_program).
    pid = _pylibc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(FLAGS | SIGCHLD),
                          ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0),
                          ctypes.c_ulong(cfg.cookie))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, "clone into new namespaces: " + os.strerror(err))
    return pid


def _check(rc, what):
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def _write(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _mount_tmpfs(target, data):
    _check(_libc.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, data),
           "mount tmpfs on %s" % target)


def _copy_tree(src, dst):
    """Copy what init left in the zygote's /tmp: directories, regular files, symlinks."""
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        st = os.lstat(s)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(d, stat.S_IMODE(st.st_mode))
            _copy_tree(s, d)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(st.st_mode):
            with open(s, "rb") as fi, open(d, "wb") as fo:
                while chunk := fi.read(1 << 20):
                    fo.write(chunk)
            os.chmod(d, stat.S_IMODE(st.st_mode))


def enter(cfg):
    """In the cloned child, before anything else (see the module docstring). Raises OSError;
    the caller exits then, so no environment ever runs half set up."""
    # First: Landlock and the filter need it (set by setpriv/bwrap already; harmless again).
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _write("/proc/self/setgroups", b"deny")
    _write("/proc/self/uid_map", cfg.uid_map)
    _write("/proc/self/gid_map", cfg.gid_map)
    seeded = bool(os.listdir("/tmp"))
    old_tmp = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY) if seeded else -1
    try:
        _mount_tmpfs(b"/tmp", cfg.tmpfs_data)
        if seeded:
            _copy_tree("/proc/self/fd/%d" % old_tmp, "/tmp")
    finally:
        if old_tmp >= 0:
            os.close(old_tmp)
    if os.path.isdir("/dev/shm"):
        _mount_tmpfs(b"/dev/shm", cfg.tmpfs_data)
    if cfg.landlock is not None:
        fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(cfg.landlock),
                           ctypes.c_size_t(ctypes.sizeof(cfg.landlock)), ctypes.c_uint32(0))
        _check(fd, "landlock_create_ruleset")
        try:
            _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)),
                   "landlock_restrict_self")
        finally:
            os.close(fd)
    # Every capability of the new user namespace, gone. The new namespace came with a full
    # bounding set (the kernel resets it): empty it while CAP_SETPCAP is still ours, then
    # capset to nothing.
    for cap in cfg.caps:
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability %d" % cap)
    _check(_libc.capset(ctypes.byref(cfg.cap_header), cfg.cap_data), "capset")
    if cfg.prog is not None:
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(cfg.prog), 0, 0),
               "seccomp")
