"""Attacks on the file-system view: reading what is not the function's, writing where it may
not, filling /tmp, and escaping through /proc."""

from __future__ import annotations

import errno
import os

from tests.security.conftest import assert_neighbour_fine, request, result

PROBE = """
import errno, os
def attempt(fn):
    try:
        data = fn()
        return {"ok": True, "data": data if isinstance(data, (str, list)) else repr(data)}
    except OSError as e:
        return {"ok": False, "errno": e.errno, "type": type(e).__name__}
def read(p):
    with open(p, "rb") as f:
        return f.read(200).decode(errors="replace")
def write(p):
    with open(p, "w") as f:
        f.write("owned")
    return "written"
def handler(event, context):
    out = {}
    for p in event.get("read", []):
        out["read " + p] = attempt(lambda: read(p))
    for p in event.get("list", []):
        out["list " + p] = attempt(lambda: os.listdir(p))
    for p in event.get("write", []):
        out["write " + p] = attempt(lambda: write(p))
    return out
"""


def probe(h, event, **cfg):
    env = h.function("prober", PROBE, **cfg)
    a = h.attack(env, event)
    assert_neighbour_fine(a)
    return result(a.outcome)


def test_read_etc_shadow_is_blocked(h):
    out = probe(h, {"read": ["/etc/shadow", "/etc/gshadow", "/proc/1/root/etc/shadow"]})
    for key, r in out.items():
        assert r["ok"] is False, key
    assert out["read /etc/shadow"]["errno"] == errno.ENOENT  # not mounted at all


def test_read_registry_database_is_blocked(h):
    out = probe(h, {"read": [h.registry_db], "list": [h.data_dir, h.root]})
    assert all(r["ok"] is False for r in out.values()), out
    assert "SQLite format" not in repr(out)
    with open(h.registry_db, "rb") as f:  # the server's live database really is there
        assert f.read(15) == b"SQLite format 3"


def test_read_other_functions_code_is_blocked(h):
    other = os.path.join(h.neighbour_code, "app.py")
    out = probe(h, {"read": [other], "list": [h.neighbour_code]})
    assert all(r["ok"] is False for r in out.values()), out
    # Its own code is readable, at /var/task.
    own = probe(h, {"read": ["/var/task/app.py"]})
    assert own["read /var/task/app.py"]["ok"] is True
    assert "def attempt" in own["read /var/task/app.py"]["data"]


def test_read_other_functions_tmp_is_blocked(h):
    writer = h.function("writer", """
        import os
        def handler(event, context):
            with open("/tmp/secret.txt", "w") as f:
                f.write("WRITER-SECRET")
            return {"tmp": os.listdir("/tmp")}
    """)
    assert result(writer.invoke(request()))["tmp"] == ["secret.txt"]
    envs = os.path.join(h.root, "envs")  # the host's per-environment scratch root
    out = probe(h, {"read": ["/tmp/secret.txt"], "list": ["/tmp", envs]})
    assert out["read /tmp/secret.txt"] == {"ok": False, "errno": errno.ENOENT, "type": "FileNotFoundError"}
    assert out["list /tmp"] == {"ok": True, "data": []}  # its own, empty /tmp
    assert all(r["ok"] is False for k, r in out.items() if k != "list /tmp"), out
    assert "WRITER-SECRET" not in repr(out)


def test_write_outside_tmp_is_blocked(h):
    code = h.neighbour_code
    targets = ["/var/task/evil.py", "/evil", "/usr/evil", "/etc/passwd", "/etc/evil",
               os.path.join(code, "evil.py"), "/proc/sys/kernel/hostname", "/dev/evil"]
    out = probe(h, {"write": targets + ["/tmp/fine"]})
    assert out.pop("write /tmp/fine") == {"ok": True, "data": "written"}
    assert all(r["ok"] is False for r in out.values()), out
    assert not os.path.exists(os.path.join(code, "evil.py"))
    assert out["write /var/task/evil.py"]["errno"] == errno.EROFS


def test_fill_tmp_past_its_limit_is_stopped(h):
    env = h.function("filler", """
        import os
        def handler(event, context):
            chunk = b"x" * (1 << 20)
            written = 0
            try:
                for i in range(10_000):
                    with open("/tmp/f%d" % (i // 4), "ab") as f:
                        f.write(chunk)
                    written += len(chunk)
            except OSError as e:
                st = os.statvfs("/tmp")
                return {"written": written, "errno": e.errno, "size": st.f_blocks * st.f_frsize}
            return {"written": written}
    """, memory_mb=1024, ephemeral_storage_mb=16)
    a = h.attack(env)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    assert out["errno"] == errno.ENOSPC
    assert out["size"] == 16 << 20
    assert out["written"] <= 16 << 20


def test_escape_via_proc_is_blocked(h):
    env = h.function("proc-escape", """
        import os
        def t(fn):
            try:
                return {"ok": True, "v": repr(fn())[:200]}
            except OSError as e:
                return {"ok": False, "errno": e.errno}
        def handler(event, context):
            return {
                "list /proc/1/root": t(lambda: os.listdir("/proc/1/root")),
                "readlink /proc/1/exe": t(lambda: os.readlink("/proc/1/exe")),
                "read /proc/1/environ": t(lambda: open("/proc/1/environ", "rb").read()),
                "write /proc/self/exe": t(lambda: open("/proc/self/exe", "r+b")),
                "shadow via /proc/self/root": t(lambda: open("/proc/self/root/etc/shadow").read()),
                "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            }
    """)
    a = h.attack(env)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    for key in ("list /proc/1/root", "readlink /proc/1/exe", "read /proc/1/environ",
                "write /proc/self/exe", "shadow via /proc/self/root"):
        assert out[key]["ok"] is False, (key, out[key])
    # Its own PID namespace: bwrap's init (1) and the guest; never the server's processes.
    assert len(out["pids"]) <= 3 and 1 in out["pids"], out["pids"]
