"""Node.js variants of the file-system attacks (test_filesystem.py): reading what is not the
function's, writing where it may not, filling /tmp, and escaping through /proc, from `fs`."""

from __future__ import annotations

import errno
import os

from tests.security.conftest import assert_neighbour_fine, request, result

# Node's fs errors carry libuv's errno, the negated C errno on Linux: reported positive here.
PROBE = """
const fs = require('fs');
function attempt(fn) {
  try {
    const data = fn();
    return { ok: true, data: typeof data === 'string' || Array.isArray(data) ? data : String(data) };
  } catch (e) {
    return { ok: false, errno: -e.errno, code: e.code };
  }
}
function read(p) {
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.alloc(200);
    return buf.subarray(0, fs.readSync(fd, buf, 0, 200, null)).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
function write(p) {
  fs.writeFileSync(p, 'owned');
  return 'written';
}
exports.handler = async (event) => {
  const out = {};
  for (const p of event.read || []) out['read ' + p] = attempt(() => read(p));
  for (const p of event.list || []) out['list ' + p] = attempt(() => fs.readdirSync(p));
  for (const p of event.write || []) out['write ' + p] = attempt(() => write(p));
  return out;
};
"""


def probe(h, name, event, **cfg):
    env = h.node_function(name, PROBE, **cfg)
    a = h.attack(env, event)
    assert_neighbour_fine(a)
    return result(a.outcome)


def test_read_host_secret_is_blocked(hn):
    out = probe(hn, "read_host_secret",
                {"read": ["/etc/shadow", "/etc/gshadow", "/proc/1/root/etc/shadow"]})
    for key, r in out.items():
        assert r["ok"] is False, key
    assert out["read /etc/shadow"] == {"ok": False, "errno": errno.ENOENT, "code": "ENOENT"}


def test_read_registry_database_is_blocked(hn):
    out = probe(hn, "read_registry_db", {"read": [hn.registry_db], "list": [hn.data_dir, hn.root]})
    assert all(r["ok"] is False for r in out.values()), out
    assert "SQLite format" not in repr(out)
    with open(hn.registry_db, "rb") as f:  # the server's live database really is there
        assert f.read(15) == b"SQLite format 3"


def test_read_other_functions_code_is_blocked(hn):
    other = os.path.join(hn.neighbour_code, "app.py")
    out = probe(hn, "read_other_code", {"read": [other], "list": [hn.neighbour_code]})
    assert all(r["ok"] is False for r in out.values()), out
    # Its own code is readable, at /var/task.
    own = probe(hn, "read_own_code", {"read": ["/var/task/index.js"]})
    assert own["read /var/task/index.js"]["ok"] is True
    assert "function attempt" in own["read /var/task/index.js"]["data"]


def test_read_other_functions_tmp_is_blocked(hn):
    # The writer is a Node function too, and so is a second environment of the prober's own
    # kind: neither sees the other's /tmp.
    writer = hn.node_function("tmp_writer", """
        const fs = require('fs');
        exports.handler = async () => {
          fs.writeFileSync('/tmp/secret.txt', 'WRITER-SECRET');
          return { tmp: fs.readdirSync('/tmp') };
        };
    """)
    assert result(writer.invoke(request()))["tmp"] == ["secret.txt"]
    envs = os.path.join(hn.root, "envs")  # the host's per-environment scratch root
    out = probe(hn, "read_other_tmp", {"read": ["/tmp/secret.txt"], "list": ["/tmp", envs]})
    assert out["read /tmp/secret.txt"] == {"ok": False, "errno": errno.ENOENT, "code": "ENOENT"}
    assert out["list /tmp"] == {"ok": True, "data": []}  # its own, empty /tmp
    assert out[f"list {envs}"]["ok"] is False, out
    assert "WRITER-SECRET" not in repr(out)


def test_write_outside_tmp_is_blocked(hn):
    code = hn.neighbour_code
    targets = ["/var/task/evil.js", "/evil", "/usr/evil", "/etc/passwd", "/etc/evil",
               os.path.join(code, "evil.py"), "/proc/sys/kernel/hostname", "/dev/evil",
               "/usr/lib/node_modules/evil.js"]
    out = probe(hn, "write_outside_tmp", {"write": targets + ["/tmp/fine"]})
    assert out.pop("write /tmp/fine") == {"ok": True, "data": "written"}
    assert all(r["ok"] is False for r in out.values()), out
    assert not os.path.exists(os.path.join(code, "evil.py"))
    assert out["write /var/task/evil.js"]["errno"] == errno.EROFS


def test_fill_tmp_past_its_limit_is_stopped(hn):
    env = hn.node_function("fill_tmp", """
        const fs = require('fs');
        exports.handler = async () => {
          const chunk = Buffer.alloc(1 << 20, 120);
          let written = 0;
          try {
            for (let i = 0; i < 10000; i++) {
              fs.appendFileSync('/tmp/f' + Math.floor(i / 4), chunk);
              written += chunk.length;
            }
          } catch (e) {
            const st = fs.statfsSync('/tmp');
            return { written, code: e.code, size: st.blocks * st.bsize };
          }
          return { written };
        };
    """, memory_mb=1024, ephemeral_storage_mb=16)
    a = hn.attack(env)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    assert out["code"] == "ENOSPC", out
    assert out["size"] == 16 << 20
    assert out["written"] <= 16 << 20


def test_escape_via_proc_is_blocked(hn):
    env = hn.node_function("proc_escape", """
        const fs = require('fs');
        function t(fn) {
          try {
            return { ok: true, v: String(fn()).slice(0, 200) };
          } catch (e) {
            return { ok: false, code: e.code };
          }
        }
        exports.handler = async () => ({
          'list /proc/1/root': t(() => fs.readdirSync('/proc/1/root')),
          'readlink /proc/1/exe': t(() => fs.readlinkSync('/proc/1/exe')),
          'read /proc/1/environ': t(() => fs.readFileSync('/proc/1/environ')),
          'write /proc/self/exe': t(() => fs.openSync('/proc/self/exe', 'r+')),
          'append /proc/self/exe': t(() => fs.appendFileSync('/proc/self/exe', 'x')),
          'shadow via /proc/self/root': t(() => fs.readFileSync('/proc/self/root/etc/shadow')),
          'chroot via /proc/1/cwd': t(() => fs.readdirSync('/proc/1/cwd')),
          pids: fs.readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).map(Number).sort((a, b) => a - b),
        });
    """)
    a = hn.attack(env)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    pids = out.pop("pids")
    for key, r in out.items():
        assert r["ok"] is False, (key, r)
    assert out["write /proc/self/exe"]["code"] in ("EROFS", "ETXTBSY", "EACCES"), out
    # Its own PID namespace: bwrap's init (1) and the guest; never the server's processes.
    assert len(pids) <= 3 and 1 in pids, pids
