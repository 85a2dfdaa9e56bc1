"""seccomp.zygote_program: the zygote's variant of the guest filter (issue 24, decision 068).

The filter is loaded in a child interpreter (never in the test process: filters cannot be
removed), which then tries the calls and prints what the kernel answered.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runner.confinement import seccomp

pytestmark = pytest.mark.skipif(seccomp.problem() is not None,
                                reason=f"no libseccomp here: {seccomp.problem()}")

PROBE = r"""
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
prog = bytes.fromhex(sys.argv[1])
cookie = int(sys.argv[2])

class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

assert libc.prctl(38, 1, 0, 0, 0) == 0  # no_new_privs
fp = Fprog(len(prog) // 8, prog)
assert libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0, ctypes.get_errno()

def clone(flags, fifth):
    ctypes.set_errno(0)
    pid = libc.syscall(ctypes.c_long(56), ctypes.c_ulong(flags | 17), 0, 0, 0, ctypes.c_ulong(fifth))
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        return "ok"
    return errno.errorcode[ctypes.get_errno()]

NEWUSER = 0x10000000
out = {"plain": clone(0, 0), "ns_no_cookie": clone(NEWUSER, 0),
       "ns_wrong_cookie": clone(NEWUSER, cookie ^ 1), "ns_cookie": clone(NEWUSER, cookie)}
ctypes.set_errno(0)
libc.unshare(NEWUSER)
out["unshare"] = errno.errorcode.get(ctypes.get_errno(), "ok")
ctypes.set_errno(0)
libc.syscall(ctypes.c_long(250), 0, 0, 0, 0, 0)  # keyctl
out["keyctl"] = errno.errorcode.get(ctypes.get_errno(), "ok")
print(json.dumps(out))
"""


def run(prog: bytes, cookie: int) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, prog.hex(), str(cookie)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(__import__("os").uname().machine != "x86_64", reason="clone's number is x86_64's here")
def test_namespace_clone_needs_the_cookie_and_everything_else_stays_denied():
    cookie = 0x5EC0_0C1E_0000_0001
    out = run(seccomp.zygote_program(cookie), cookie)
    assert out["plain"] == "ok"
    assert out["ns_no_cookie"] == out["ns_wrong_cookie"] == "EPERM"
    assert out["ns_cookie"] == "ok"  # what the zygote does; this host allows user namespaces
    assert out["unshare"] == "EPERM" and out["keyctl"] == "EPERM"


@pytest.mark.skipif(__import__("os").uname().machine != "x86_64", reason="clone's number is x86_64's here")
def test_the_guest_filter_refuses_the_cookie():
    cookie = 0x5EC0_0C1E_0000_0001
    out = run(seccomp.program(), cookie)
    assert out["ns_cookie"] == out["ns_no_cookie"] == "EPERM"


def test_cookie_must_be_a_nonzero_64_bit_value():
    for bad in (0, 1 << 64, -1):
        with pytest.raises(ValueError):
            seccomp.zygote_program(bad)
