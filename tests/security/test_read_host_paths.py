"""A guest that reads every process's command line looking for the host's paths.

Under bwrap the guest's PID 1 is bwrap itself; its command line used to carry every bind
(the data directory's code path, the checkout's path). Now bwrap's options travel through a
pipe (--args) and the bootstrap is seen at /var/runtime, so what a guest can list names only
sandbox paths and the interpreter. Known and documented (docs/security.md): the interpreter's
install prefix keeps its host path, and /proc/self/mountinfo shows the source path of each
bind mount (a property of bind mounts).
"""

from __future__ import annotations

from runner.confinement import namespaces
from tests.security.conftest import REPO, request, result

LIST_PROCESSES = """
import os
def handler(event, context):
    out = {}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out[pid] = f.read().replace(b"\\0", b" ").decode()
        except OSError:
            pass
    return out
"""


def _assert_no_host_paths(cmdlines: dict, h) -> None:
    assert cmdlines, "the guest saw no process at all"
    for pid, cmd in cmdlines.items():
        for secret in (REPO, h.root, h.data_dir):
            assert secret not in cmd, f"pid {pid} shows {secret!r}: {cmd[:300]}"


def test_process_command_lines_show_no_host_paths(h):
    env = h.function("list-processes", LIST_PROCESSES)
    cmdlines = result(env.invoke(_empty()))
    _assert_no_host_paths(cmdlines, h)
    if namespaces.mode() != "off":
        assert any("/var/runtime/" in cmd for cmd in cmdlines.values())


def test_node_process_command_lines_show_no_host_paths(hn):
    env = hn.node_function("node-list-processes", """
        const fs = require('fs');
        exports.handler = async () => {
          const out = {};
          for (const pid of fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))) {
            try { out[pid] = fs.readFileSync(`/proc/${pid}/cmdline`).toString().split('\\0').join(' '); }
            catch (e) { /* exited meanwhile */ }
          }
          return out;
        };
    """, memory_mb=256)
    _assert_no_host_paths(result(env.invoke(_empty())), hn)


def _empty():
    return request({})
