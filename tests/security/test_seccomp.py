"""Attacks on the kernel's surface: system calls a function never needs (confinement/seccomp.py).

One test per denied call: a Python guest makes the raw system call through ctypes (bypassing
any library-level check) with harmless arguments and reports errno. Without the filter, 41 of the 52 calls that exist on
x86_64 reach the kernel and fail otherwise or succeed (unshare -Ur, io_uring_setup and keyctl
succeeded before the filter existed); the other 11 (pivot_root, reboot, swapon, ...) need
capabilities the guest lacks, so the kernel's EPERM and the filter's coincide, and
test_the_filter_is_installed_in_every_guest_process shows the filter is what answers. Ordinary work (threads, fork, subprocess) keeps working, in both runtimes.
"""

from __future__ import annotations

import errno
import os

import pytest

from runner.confinement import namespaces, seccomp
from runner.environments.backends import default_backends
from tests.security.conftest import make_version, request, result

pytestmark = pytest.mark.skipif(namespaces.seccomp_problem() is not None,
                                reason=f"no seccomp filter here: {namespaces.seccomp_problem()}")

RAW_SYSCALL = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {nr}

def handler(event, context):
    results = {{}}
    for name, args in event["calls"]:
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) for a in args])
        results[name] = [rc, ctypes.get_errno()]
    return results
"""


def syscall_numbers() -> dict[str, int]:
    """The native numbers of every denied call that exists on this architecture."""
    lib = seccomp._library()
    nrs = {}
    for name in (*seccomp.DENIED, "clone", "clone3", "getpid"):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0:
            nrs[name] = nr
    return nrs


NRS = syscall_numbers() if namespaces.seccomp_problem() is None else {}


@pytest.fixture(scope="module", params=["zygote", "spawn"])
def raw(request, tmp_path_factory):
    """One raw-syscall environment per way Python environments are made (forked from the
    zygote, which carries the filter into its children, or spawned), shared by the per-call
    tests: building a harness per call would cost a server start each."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RUNNER_PYTHON_ZYGOTE", "1" if request.param == "zygote" else "0")
    root = tmp_path_factory.mktemp(f"seccomp-{request.param}")
    os.chmod(root, 0o755)
    backends = default_backends(str(root / "envs"))
    env = backends["python"].create(make_version(root, f"raw-{request.param}", RAW_SYSCALL.format(nr=NRS)))
    try:
        env.start()
        yield env
    finally:
        env.destroy()
        for backend in backends.values():
            backend.close()
        mp.undo()


@pytest.mark.parametrize("name", [n for n in seccomp.DENIED if n in NRS])
def test_denied_call_fails_with_eperm(raw, name):
    # Arguments that are harmless if the call did run: null pointers and zero flags, so a
    # missing filter shows up as another errno (EFAULT, EINVAL) or success, never as damage.
    out = result(raw.invoke(_calls([(name, [0, 0, 0, 0, 0, 0])])))
    assert out[name] == [-1, errno.EPERM]


@pytest.mark.parametrize("flag", sorted(seccomp.CLONE_NAMESPACE_FLAGS))
def test_clone_with_a_namespace_flag_fails_with_eperm(raw, flag):
    # With SIGCHLD only, clone would fork a child (the control test below); a namespace flag
    # added to it must be refused before any child exists.
    flags = seccomp.CLONE_NAMESPACE_FLAGS[flag] | 17  # SIGCHLD
    out = result(raw.invoke(_calls([("clone", [flags, 0, 0, 0, 0, 0])])))
    assert out["clone"] == [-1, errno.EPERM]


def test_clone3_looks_absent_so_libraries_fall_back_to_clone(raw):
    out = result(raw.invoke(_calls([("clone3", [0, 0, 0, 0, 0, 0])])))
    assert out["clone3"] == [-1, errno.ENOSYS]


def test_the_filter_is_installed_in_every_guest_process(h):
    env = h.function("seccomp-status", """
        import subprocess
        def status(text):
            return {k: v.strip() for k, v in (l.split(":", 1) for l in text.splitlines())}
        def handler(event, context):
            own = status(open("/proc/self/status").read())
            child = status(subprocess.run(["cat", "/proc/self/status"], capture_output=True,
                                          text=True).stdout)
            return [own["Seccomp"], own["Seccomp_filters"], child["Seccomp"]]
    """)
    mode, filters, child_mode = result(env.invoke(request()))
    assert mode == child_mode == "2"  # SECCOMP_MODE_FILTER, inherited by what the guest runs
    assert int(filters) >= 1


def test_allowed_calls_still_run(raw):
    out = result(raw.invoke(_calls([("getpid", [0, 0, 0, 0, 0, 0])])))
    assert out["getpid"][0] > 0 and out["getpid"][1] == 0


def test_unshare_user_namespace_is_refused_and_ordinary_work_runs(h):
    env = h.function("unshare-ur", """
        import os, subprocess, threading
        def handler(event, context):
            r = subprocess.run(["unshare", "-Ur", "true"], capture_output=True, text=True)
            box = []
            t = threading.Thread(target=lambda: box.append(os.getpid())); t.start(); t.join()
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            return {"rc": r.returncode, "err": r.stderr, "thread": bool(box),
                    "child": os.waitpid(pid, 0)[1] >> 8}
    """)
    out = result(env.invoke(_calls([])))
    assert out["rc"] != 0 and "Operation not permitted" in out["err"]
    assert out["thread"] and out["child"] == 7


def test_node_guest_is_filtered_too(h):
    env = h.node_function("node-unshare", """
        const { spawnSync } = require('child_process');
        exports.handler = async () => {
          const r = spawnSync('unshare', ['-Ur', 'true']);
          const child = spawnSync(process.execPath, ['-e', 'process.exit(5)']);
          return { status: r.status, err: r.stderr.toString(), child: child.status };
        };
    """, memory_mb=256)
    out = result(env.invoke(_calls([])))
    assert out["status"] != 0 and "Operation not permitted" in out["err"]
    assert out["child"] == 5  # node's own child processes (clone via libuv) still start


def test_the_filter_is_a_bpf_program_of_whole_instructions():
    program = seccomp.program()
    assert program and len(program) % 8 == 0  # struct sock_filter is 8 bytes
    fd = seccomp.program_fd()
    try:
        assert os.read(fd, len(program) + 1) == program  # one pipe per spawn, read to EOF
    finally:
        os.close(fd)


def _calls(calls):
    return request({"calls": calls})
