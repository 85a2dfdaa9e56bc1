"""Attacks on processes and privileges: fork bombs, signalling or tracing the server, raising
rlimits, leaving a daemon behind; and what the guest's identity looks like from inside."""

from __future__ import annotations

import os
import signal
import time
import uuid

from runner.confinement import limits, namespaces
from tests.security.conftest import (
    assert_neighbour_fine,
    attack_watching_pids,
    group_pids,
    guest_uid,
    processes_of_uid,
    request,
    result,
    wait_pids_gone,
)


def test_guest_identity_is_unprivileged(h):
    env = h.function("whoami", """
        import os
        def handler(event, context):
            status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
            return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                    "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
                    "nnp": status["NoNewPrivs"].strip(), "root": os.environ["LAMBDA_TASK_ROOT"],
                    "cwd": os.getcwd(), "home": os.environ["HOME"], "pid": os.getpid()}
    """)
    out = result(env.invoke(request()))
    assert out["uid"] == guest_uid(env) >= namespaces.GUEST_UID_BASE
    assert out["gid"] == out["uid"] and out["groups"] == []
    assert out["caps"] == ["0000000000000000"] * 5
    assert out["nnp"] == "1"
    assert out["root"] == out["cwd"] == "/var/task" and out["home"] == "/tmp"
    assert out["pid"] <= 3  # inside its own PID namespace


def test_fork_bomb_stops_at_pids_limit_and_environment_is_replaced(h):
    env = h.function("fork-bomb", """
        import os, time
        def handler(event, context):
            me, refused = os.getpid(), 0
            while True:
                try:
                    os.fork()  # parent and every child keep forking
                except OSError:
                    refused += 1
                    if os.getpid() == me and refused >= 20:
                        return {"refused": refused}
                    time.sleep(0.05)  # at the ceiling: retry, without starving the parent
    """, memory_mb=3008, timeout_s=60)
    group = env._enforcement.group  # checked for removal after the environment is gone
    a, peak, seen = attack_watching_pids(h, env, 60)
    assert_neighbour_fine(a)
    assert result(a.outcome)["refused"] >= 20  # forks were refused: the limit was reached
    assert a.outcome.reusable is False  # ...so the environment is replaced
    assert 100 < peak <= limits.PIDS, peak  # it grew to the ceiling, and not past it
    assert wait_pids_gone(seen) == []  # every bomb process died with the environment
    assert not any(os.path.exists(d) for d in group.dirs.values())


def test_signal_server_is_blocked(h):
    assert namespaces.mode() == "root"  # kill(-1) below is only harmless inside a sandbox
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
    try:
        env = h.function("signaller", """
            import os, signal
            def handler(event, context):
                out = {}
                for name, pid in (("server", event["server"]), ("init", 1), ("parent", os.getppid())):
                    if pid == os.getpid():  # a forked environment is PID 1 of its own namespace
                        out[name] = "self"
                        continue
                    try:
                        os.kill(pid, signal.SIGUSR1)
                        out[name] = "delivered"
                    except OSError as e:
                        out[name] = e.errno
                if event.get("all"):
                    os.kill(-1, signal.SIGKILL)  # everything this uid may signal, but itself
                return out
        """)
        a = h.attack(env, {"server": os.getpid()})
        assert_neighbour_fine(a)
        out = result(a.outcome)
        assert out["server"] != "delivered" and out["init"] != "delivered"
        # kill(-1): at most its own sandbox goes (under the zygote backend with
        # RUNNER_ENV_NAMESPACES=off the guest shares uid and PID namespace with its zygote, so
        # it may take that down; docs/security.md).
        b = h.attack(env, {"server": os.getpid(), "all": True})
        assert_neighbour_fine(b)
        time.sleep(0.1)
        assert got == []  # the server never received anything
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_ptrace_server_is_blocked(h):
    env = h.function("tracer", """
        import ctypes, ctypes.util, os
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206
        def handler(event, context):
            out = {}
            for name, pid in (("server", event["server"]), ("init", 1)):
                for req in (PTRACE_ATTACH, PTRACE_SEIZE):
                    rc = libc.ptrace(req, pid, None, None)
                    out["%s/%d" % (name, req)] = ctypes.get_errno() if rc != 0 else "attached"
            try:
                open("/proc/1/mem", "rb").read(1)
                out["mem"] = "read"
            except OSError as e:
                out["mem"] = e.errno
            return out
    """)
    a = h.attack(env, {"server": os.getpid()})
    assert_neighbour_fine(a)
    out = result(a.outcome)
    assert all(v != "attached" and v != "read" for v in out.values()), out
    assert set(out) == {"server/16", "server/16902", "init/16", "init/16902", "mem"}


def test_raise_rlimits_is_blocked(h):
    env = h.function("rlimit-raiser", """
        import resource
        def handler(event, context):
            out = {}
            for name in ("RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NPROC"):
                which = getattr(resource, name)
                before = resource.getrlimit(which)
                try:
                    resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                    out[name] = "raised"
                except (ValueError, OSError) as e:
                    out[name] = type(e).__name__
                out[name + " now"] = list(resource.getrlimit(which))
                out[name + " before"] = list(before)
            return out
    """)
    a = h.attack(env)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    for name, limit in (("RLIMIT_NOFILE", 1024), ("RLIMIT_FSIZE", 512 << 20), ("RLIMIT_CORE", 0)):
        assert out[name] != "raised", out
        assert out[name + " now"] == [limit, limit]
    # No hard limit on processes by rlimit here (the pids cgroup is the limit), so this one may
    # be "raised" to what it already is; it never exceeds the cgroup's pids.max anyway.
    assert out["RLIMIT_NPROC now"][1] == out["RLIMIT_NPROC before"][1]


def test_daemonised_grandchild_dies_with_its_environment(h):
    token = str(4000 + uuid.uuid4().int % 1000) + "." + str(uuid.uuid4().int % 10**6)
    env = h.function("daemoniser", """
        import os
        def handler(event, context):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.closerange(0, 1024)  # a proper daemon: no fds back to the host
                    os.execv("/usr/bin/sleep", ["sleep", event["token"]])
                os._exit(0)
            os.wait()
            return {"daemon": "started"}
    """)
    uid = guest_uid(env)
    a = h.attack(env, {"token": token})
    assert_neighbour_fine(a)
    assert result(a.outcome) == {"daemon": "started"}

    def daemons():
        return [p for p in processes_of_uid(uid) if token in " ".join(p.cmdline())]

    deadline = time.monotonic() + 3
    while not daemons() and time.monotonic() < deadline:
        time.sleep(0.02)
    found = daemons()
    assert len(found) == 1, [(p.pid, p.ppid(), p.cmdline()) for p in found]  # running, detached
    assert found[0].pid in group_pids(env)  # ...and still in the environment's cgroup
    env.destroy()
    assert wait_pids_gone([found[0].pid]) == []
    assert h.ask_neighbour("after-destroy")["ok"]
