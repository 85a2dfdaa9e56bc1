"""Node.js variants of the process and privilege attacks (test_processes.py): a child_process
fork bomb, signalling or tracing the server, raising rlimits with prlimit(1), leaving a
daemon behind; and what the guest's identity looks like from inside node."""

from __future__ import annotations

import errno
import os
import signal
import time
import uuid

import psutil

from runner.confinement import limits, namespaces
from runner.environments.node import process_policy
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

MB = 1 << 20


def test_guest_identity_is_unprivileged(hn):
    env = hn.node_function("whoami", """
        const fs = require('fs');
        exports.handler = async () => {
          const status = {};
          for (const l of fs.readFileSync('/proc/self/status', 'utf8').split('\\n')) {
            const i = l.indexOf(':');
            if (i > 0) status[l.slice(0, i)] = l.slice(i + 1).trim();
          }
          // Not process.getgroups(): node always adds the effective gid to that list.
          return { uid: process.getuid(), gid: process.getgid(), groups: status.Groups,
                   caps: ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map((k) => status[k]),
                   nnp: status.NoNewPrivs, root: process.env.LAMBDA_TASK_ROOT, cwd: process.cwd(),
                   home: process.env.HOME, pid: process.pid };
        };
    """)
    out = result(env.invoke(request()))
    assert out["uid"] == guest_uid(env) >= namespaces.GUEST_UID_BASE
    assert out["gid"] == out["uid"] and out["groups"] == ""  # no supplementary groups
    assert out["caps"] == ["0000000000000000"] * 5
    assert out["nnp"] == "1"
    assert out["root"] == out["cwd"] == "/var/task" and out["home"] == "/tmp"
    assert out["pid"] <= 3  # inside its own PID namespace


def test_fork_bomb_stops_at_pids_limit_and_environment_is_replaced(hn):
    # Spawns `sleep` (cheap: a node child per fork would need ~40 MB each) in batches until the
    # pids cgroup refuses 20 spawns.
    env = hn.node_function("fork_bomb", """
        const { spawn } = require('child_process');
        exports.handler = () => new Promise((resolve) => {
          let spawned = 0, refused = 0;
          const codes = {};
          const fail = (e) => { refused++; codes[e.code] = (codes[e.code] || 0) + 1; };
          const batch = () => {
            if (refused >= 20) return resolve({ spawned, refused, codes });
            for (let i = 0; i < 32; i++) {
              try {
                const c = spawn('/usr/bin/sleep', ['60'], { stdio: 'ignore' });
                c.on('error', fail);
                c.on('spawn', () => { spawned++; });
              } catch (e) {
                fail(e);
              }
            }
            setTimeout(batch, 2);
          };
          batch();
        });
    """, memory_mb=1024, timeout_s=40)
    group = env._enforcement.group  # checked for removal after the environment is gone
    a, peak, seen = attack_watching_pids(hn, env, 40)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    assert out["refused"] >= 20 and "EAGAIN" in out["codes"], out  # the limit was reached
    assert out["spawned"] > 100, out
    assert a.outcome.reusable is False  # ...so the environment is replaced
    assert 100 < peak <= limits.PIDS, peak  # it grew to the ceiling, and not past it
    assert wait_pids_gone(seen) == []  # every spawned process died with the environment
    assert not any(os.path.exists(d) for d in group.dirs.values())


SIGNALLER = """
const fs = require('fs');
exports.handler = async (event) => {
  const out = {};
  for (const [name, pid] of [['server', event.server], ['init', 1], ['parent', process.ppid]]) {
    try {
      process.kill(pid, 'SIGUSR1');
      out[name] = 'delivered';
    } catch (e) {
      out[name] = e.code;
    }
  }
  // /proc scanning: every process it can see, by command line.
  out.seen = fs.readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).map((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\\0').join(' ');
    } catch (e) {
      return e.code;
    }
  });
  if (event.all) {
    try {
      process.kill(-1, 'SIGKILL'); // everything this uid may signal, but itself
      out.all = 'delivered';
    } catch (e) {
      out.all = e.code;
    }
  }
  return out;
};
"""


def test_signal_server_is_blocked(hn):
    assert namespaces.mode() == "root"  # kill(-1) below is only harmless inside a sandbox
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
    try:
        env = hn.node_function("signal_server", SIGNALLER)
        a = hn.attack(env, {"server": os.getpid()})
        assert_neighbour_fine(a)
        out = result(a.outcome)
        assert out["server"] == "ESRCH" and out["init"] == "EPERM", out  # no such pid / root
        assert out["parent"] != "delivered"
        seen = " | ".join(out["seen"])
        assert "bwrap" in seen and "node" in seen, seen  # it did see its own namespace...
        assert "pytest" not in seen and "python" not in seen, seen  # ...and nothing else
        assert len(out["seen"]) <= 3
        # kill(-1): a spawned Node environment is alone in its uid and PID namespace, so this
        # reaches nothing but the guest's own children: with none, there is nothing to signal.
        b = hn.attack(env, {"server": os.getpid(), "all": True})
        assert_neighbour_fine(b)
        assert result(b.outcome)["all"] == "ESRCH"
        time.sleep(0.1)
        assert got == []  # the server never received anything
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_ptrace_server_is_blocked(hn):
    # Node has no ptrace binding; a guest can still run any binary of the read-only /usr, e.g.
    # the host's python3 with ctypes, which is what this one does. (Not at node itself, pid 2:
    # a guest may trace its own processes, and a stopped node would just time out.)
    env = hn.node_function("ptrace_server", """
        const fs = require('fs');
        const { execFileSync } = require('child_process');
        const TRACER = `
import ctypes, json, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
out = {}
for name, pid in (("server", int(sys.argv[1])), ("init", 1)):
    for req in (16, 0x4206):  # PTRACE_ATTACH, PTRACE_SEIZE
        rc = libc.ptrace(req, pid, None, None)
        out["%s/%d" % (name, req)] = ctypes.get_errno() if rc != 0 else "attached"
print(json.dumps(out))
`;
        exports.handler = async (event) => {
          const out = JSON.parse(execFileSync('/usr/bin/python3', ['-c', TRACER, String(event.server)],
                                              { encoding: 'utf8' }));
          try {
            fs.readFileSync('/proc/1/mem');
            out.mem = 'read';
          } catch (e) {
            out.mem = e.code;
          }
          return out;
        };
    """)
    a = hn.attack(env, {"server": os.getpid()})
    assert_neighbour_fine(a)
    out = result(a.outcome)
    assert set(out) == {"server/16", "server/16902", "init/16", "init/16902", "mem"}
    # With the seccomp filter, ptrace itself is refused (EPERM) before the kernel looks for
    # the pid; without it, the server is no pid here (ESRCH) and init is root's (EPERM).
    seccomp_on = namespaces.seccomp_problem() is None
    assert out["server/16"] == (errno.EPERM if seccomp_on else errno.ESRCH), out
    assert out["init/16"] == errno.EPERM, out
    assert all(v not in ("attached", "read") for v in out.values()), out


def test_raise_rlimits_is_blocked(hn):
    # Node has no setrlimit: the guest tries prlimit(1) on itself and on a child it execs, and
    # the shell's ulimit; /proc/self/limits must read the same afterwards.
    env = hn.node_function("raise_rlimits", """
        const fs = require('fs');
        const { spawnSync } = require('child_process');
        const NAMES = ['Max open files', 'Max file size', 'Max core file size', 'Max data size'];
        function limits(text) {
          const out = {};
          for (const l of text.split('\\n')) {
            for (const n of NAMES) if (l.startsWith(n)) out[n] = l.slice(n.length).trim().split(/\\s+/).slice(0, 2);
          }
          return out;
        }
        const RAISE = ['--nofile=4096:4096', '--fsize=unlimited', '--core=unlimited', '--data=unlimited'];
        exports.handler = async () => {
          const before = limits(fs.readFileSync('/proc/self/limits', 'utf8'));
          const run = (cmd, args) => {
            const r = spawnSync(cmd, args, { encoding: 'utf8' });
            return { status: r.status, stdout: r.stdout, error: r.error ? r.error.code : null };
          };
          const tries = {
            self: run('/usr/bin/prlimit', ['--pid', String(process.pid), ...RAISE]),
            exec: run('/usr/bin/prlimit', [...RAISE, '--', '/usr/bin/cat', '/proc/self/limits']),
            ulimit: run('/bin/sh', ['-c', 'ulimit -n 4096 && ulimit -n']),
          };
          const child = run('/usr/bin/cat', ['/proc/self/limits']);
          return { before, after: limits(fs.readFileSync('/proc/self/limits', 'utf8')),
                   child: limits(child.stdout), tries };
        };
    """, memory_mb=256)
    a = hn.attack(env)
    assert_neighbour_fine(a)
    out = result(a.outcome)
    for name, t in out["tries"].items():
        assert t["error"] is None and t["status"] != 0, (name, t)  # ran, and failed
    assert "4096" not in out["tries"]["ulimit"]["stdout"]
    assert "unlimited" not in out["tries"]["exec"]["stdout"]
    data = (256 + process_policy.DATA_HEADROOM_MB) * MB
    expected = {"Max open files": ["1024", "1024"], "Max file size": [str(512 * MB)] * 2,
                "Max core file size": ["0", "0"], "Max data size": [str(data)] * 2}
    assert out["before"] == expected, out["before"]
    assert out["after"] == out["child"] == expected, out


def test_daemonised_grandchild_dies_with_its_environment(hn):
    tag = f"{4000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    env = hn.node_function("daemonise", """
        const { spawn } = require('child_process');
        exports.handler = async (event) => {
          // setsid(1) in a new session forks again: the sleep is an orphaned grandchild.
          spawn('/usr/bin/setsid', ['/usr/bin/sleep', event.tag], { detached: true, stdio: 'ignore' }).unref();
          // And a detached node daemon of its own.
          spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'daemon-' + event.tag],
                { detached: true, stdio: 'ignore' }).unref();
          return { daemon: 'started' };
        };
    """, memory_mb=512)
    uid = guest_uid(env)
    a = hn.attack(env, {"tag": tag})
    assert_neighbour_fine(a)
    assert result(a.outcome) == {"daemon": "started"}

    def daemons():
        out = []
        for p in processes_of_uid(uid):
            try:
                if tag in " ".join(p.cmdline()):
                    out.append(p)
            except psutil.Error:  # e.g. setsid(1)'s exited parent, a zombie until reaped
                pass
        return out

    deadline = time.monotonic() + 5
    while len(daemons()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    found = daemons()
    assert len(found) == 2, [(p.pid, p.ppid(), p.cmdline()) for p in found]  # both running
    sleeper = next(p for p in found if "sleep" in p.cmdline()[0])
    assert namespaces.is_wrapper(psutil.Process(sleeper.ppid()).cmdline())  # reparented to the ns init
    assert {p.pid for p in found} <= set(group_pids(env))  # ...and still in the cgroup
    env.destroy()
    assert wait_pids_gone([p.pid for p in found]) == []
    assert hn.ask_neighbour("after-destroy")["ok"]

