"""Two environments of one function must not reach each other (issue 17 item 10, issue 24).

Spawned environments each get a bwrap sandbox of their own; environments forked from a
version's zygote get fresh user, mount, PID and IPC namespaces, their own /tmp and /dev/shm
and a Landlock scope (environments/python/guest/python_envns.py, docs/decisions/068). Each test
runs the same two-environment attack against both ways, and the last one shows what the
switch RUNNER_ENV_NAMESPACES=off gives back (the shared zygote sandbox of decision 007), so the
attacks are known to succeed where nothing stops them.
"""

from __future__ import annotations

import os

import pytest

from runner.confinement import namespaces
from runner.environments.backends import default_backends
from runner.environments.python.env_namespaces import problem
from tests.security.conftest import make_version, request, result

pytestmark = pytest.mark.skipif(problem() is not None,
                                reason=f"no per-environment namespaces here: {problem()}")

# One handler, steered by the event, so that both environments run the same code (one version).
PROBE = r"""
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
KEEP = []
with open("/tmp/from-init", "w") as f:   # init runs once, in the zygote (or in each spawn)
    f.write("init")
INIT_UNSHARE = libc.unshare(0x10000000) == 0 or ctypes.get_errno()  # CLONE_NEWUSER, in init

def handler(event, context):
    op = event["op"]
    if op == "whoami":
        return {"proc_pid": int(os.readlink("/proc/self")), "pid": os.getpid(),
                "ppid": os.getppid(), "init_unshare": INIT_UNSHARE}
    if op == "write":
        for d in ("/tmp", "/dev/shm"):
            try:
                with open(d + "/secret", "w") as f:
                    f.write(event["value"])
            except PermissionError:
                assert d == "/dev/shm"  # read-only where bwrap made it (no shm for anyone)
        with open("/tmp/from-init", "a") as f:
            f.write("+" + event["value"])
        return "ok"
    if op == "read":
        out = {}
        for p in ("/tmp/secret", "/dev/shm/secret", "/tmp/from-init"):
            try:
                out[p] = open(p).read()
            except OSError as exc:
                out[p] = errno.errorcode[exc.errno]
        return out
    if op == "listen":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(b"\0env-secret")
        s.listen(8)
        KEEP.append(s)
        libc.shmget.restype = ctypes.c_int
        shm = libc.shmget(0x5EC7E7, 4096, 0o1666)  # IPC_CREAT | 0666
        return {"shm": shm, "errno": ctypes.get_errno()}
    if op == "reach":
        out = {}
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(b"\0env-secret")
            out["abstract"] = "connected"
        except OSError as exc:
            out["abstract"] = errno.errorcode[exc.errno]
        ctypes.set_errno(0)
        out["shm"] = [libc.shmget(0x5EC7E7, 0, 0), errno.errorcode.get(ctypes.get_errno(), 0)]
        pid = event["pid"]
        # In a spawned sandbox of its own, that number may be b itself: then a is not there.
        mine = pid == int(os.readlink("/proc/self"))
        for name in ("environ", "mem", "maps"):
            if mine:
                out[name] = "ENOENT"
                continue
            try:
                open("/proc/%d/%s" % (pid, name), "rb").read(1)
                out[name] = "read"
            except OSError as exc:
                out[name] = errno.errorcode[exc.errno]
        try:
            if mine:
                raise ProcessLookupError(errno.ESRCH, "not a sibling")
            os.kill(pid, 0)
            out["kill"] = "sent"
        except OSError as exc:
            out["kill"] = errno.errorcode[exc.errno]
        return out
    if op == "escape":
        out = {}
        ctypes.set_errno(0)
        out["unshare"] = [libc.unshare(0x10000000), errno.errorcode.get(ctypes.get_errno(), 0)]
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(56), ctypes.c_ulong(0x10000000 | 17), 0, 0, 0,
                          ctypes.c_ulong(event["cookie"]))
        if rc == 0:
            os._exit(0)
        out["clone"] = [rc, errno.errorcode.get(ctypes.get_errno(), 0)]
        ctypes.set_errno(0)
        out["mount"] = [libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None),
                        errno.errorcode.get(ctypes.get_errno(), 0)]
        return out
"""


@pytest.fixture(params=["zygote", "spawn"])
def pair(request, tmp_path, monkeypatch):
    """Two environments of one version, made the way the param says."""
    monkeypatch.setenv("RUNNER_PYTHON_ZYGOTE", "1" if request.param == "zygote" else "0")
    os.chmod(tmp_path, 0o755)
    backends = default_backends(str(tmp_path / "envs"))
    v = make_version(tmp_path, f"ns-{request.param}", PROBE)
    envs = []
    try:
        for _ in range(2):
            env = backends["python"].create(v)
            envs.append(env)
            env.start()
        yield envs
    finally:
        for env in envs:
            env.destroy()
        for backend in backends.values():
            backend.close()


def zygote_of(env):
    """The zygote `env` was forked from, None for a spawned environment."""
    z = getattr(env, "zygote", None)
    return z if z is not None and z.forkable else None


def call(env, **event):
    return result(env.invoke(request(event)))


def test_each_environment_has_its_own_tmp_and_dev_shm(pair):
    a, b = pair
    assert call(a, op="write", value="a-secret") == "ok"
    seen = call(b, op="read")
    assert seen["/tmp/secret"] == "ENOENT" and seen["/dev/shm/secret"] == "ENOENT"
    if zygote_of(a) is not None:  # forked: /dev/shm is a private, writable tmpfs
        assert call(a, op="read")["/dev/shm/secret"] == "a-secret"
    # What init left in /tmp is in every environment; one's writes stay its own.
    assert seen["/tmp/from-init"] == "init"
    assert call(a, op="read")["/tmp/from-init"] == "init+a-secret"


def test_a_sibling_cannot_read_signal_or_connect(pair):
    a, b = pair
    target = call(a, op="whoami")["proc_pid"]  # a's pid as /proc shows it to b, if at all
    listen = call(a, op="listen")
    assert listen["shm"] >= 0, listen
    out = call(b, op="reach", pid=target)
    if zygote_of(a) is not None:
        # Same uid, same /proc: refused by the kernel because the two live in different
        # user namespaces (ptrace access), by Landlock (the socket) and by PID namespaces.
        assert (out["environ"], out["abstract"], out["kill"]) == ("EACCES", "EPERM", "ESRCH"), out
    assert out["abstract"] in ("EPERM", "ECONNREFUSED"), out
    assert out["shm"] == [-1, "ENOENT"], out
    for name in ("environ", "mem", "maps"):
        assert out[name] in ("EACCES", "EPERM", "ENOENT"), out
    assert out["kill"] in ("ESRCH", "EPERM"), out


def test_each_environment_has_its_own_pid_numbering(pair):
    a, _ = pair
    who = call(a, op="whoami")
    if zygote_of(a) is not None:  # PID 1 of its own namespace: its zygote has no pid there
        assert who["pid"] == 1 and who["ppid"] == 0
    else:  # a spawned environment sits under bwrap's PID 1, its sandbox's init
        assert who["ppid"] == 1 and who["pid"] <= 3


def test_namespaces_cannot_be_made_in_init_nor_in_an_environment(pair):
    a, _ = pair
    assert call(a, op="whoami")["init_unshare"] == 1  # EPERM: init ran under the filter
    # Even with the right cookie (read from the host here; a guest never sees it), a forked
    # environment is under the full guest filter: no namespace, no mount.
    cookie = zygote_of(a)._ns_plan.cookie if zygote_of(a) is not None else 1
    out = call(a, op="escape", cookie=cookie)
    assert out == {"unshare": [-1, "EPERM"], "clone": [-1, "EPERM"], "mount": [-1, "EPERM"]}


def test_switched_off_forked_environments_share_the_zygote_sandbox(tmp_path, monkeypatch):
    """The control: RUNNER_ENV_NAMESPACES=off is decision 007's shared sandbox, where the
    attacks above succeed."""
    monkeypatch.setenv("RUNNER_PYTHON_ZYGOTE", "1")
    monkeypatch.setenv("RUNNER_ENV_NAMESPACES", "off")
    os.chmod(tmp_path, 0o755)
    backends = default_backends(str(tmp_path / "envs"))
    v = make_version(tmp_path, "ns-off", PROBE)
    a, b = backends["python"].create(v), backends["python"].create(v)
    try:
        a.start()
        b.start()
        assert a.zygote is not None and not a.zygote.env_namespaces
        call(a, op="write", value="shared")
        assert call(b, op="read")["/tmp/secret"] == "shared"
        call(a, op="listen")
        out = call(b, op="reach", pid=call(a, op="whoami")["pid"])
        assert (out["abstract"], out["environ"], out["kill"]) == ("connected", "read", "sent"), out
    finally:
        a.destroy()
        b.destroy()
        for backend in backends.values():
            backend.close()
    assert namespaces.mode() != "off"
