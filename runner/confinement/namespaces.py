"""Namespaces for subprocess environments: what a guest can see and touch.

`wrap(argv, version, tmp_dir)` turns a runtime's command line into one that runs it inside
bubblewrap (Debian's `bwrap`; docs/decisions/006-bubblewrap-for-namespaces.md says why), with:

* a mount namespace whose root is an empty read-only tmpfs holding only: /usr (and the /bin,
  /lib... links), a few files of /etc, the interpreter's install prefix (read-only at its host
  path: an interpreter built with an absolute RUNPATH finds its libraries only there), the
  runtime's bootstrap directory read-only at /var/runtime (as on Lambda), the function's code
  read-only at /var/task, a private size-limited tmpfs at /tmp, a fresh /proc and a minimal /dev.
  The server's data directory, other functions' code, the registry database and the server's
  sockets are simply not there.
* its own PID, IPC, UTS and cgroup namespaces, and a network namespace with only loopback
  unless the function's `network` flag is set.
* an unprivileged uid/gid of its own (one per environment, from GUEST_UID_BASE up, mapped to
  nothing on the host), no capabilities (bounding set empty), no_new_privs.

Two modes, chosen once by probing the host:
* "root": the server is root; bwrap runs privileged (no user namespace needed, which hosts that
  forbid unprivileged user namespaces still allow), keeps only SETUID/SETGID/SETPCAP, and
  setpriv(1) drops to the guest uid and empties every capability set before exec'ing the runtime.
* "userns": the server is not root; bwrap builds the same view inside a user namespace, and the
  guest keeps the server's uid (mapped to itself) with no capabilities.
* a seccomp filter (seccomp.py: no new namespaces, mounts, io_uring, keyrings, bpf, ptrace,
  ...) that bwrap loads as its last step before exec'ing the runtime; it travels with the
  Gate, so every sandbox that is held at a gate is filtered.
* "off": neither works; argv is returned unchanged and doctor.py warns once.

Everything happens in bwrap and setpriv between fork and the runtime's exec, in processes of
their own: the server never calls fork() hooks (it is multi-threaded), and no guest code runs
before the sandbox is complete. With a `Gate` (gate.py, made by new_gate()), bwrap also holds the finished
sandbox before the runtime's exec until the host has placed it in its cgroups (decision 039).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import resource
import shutil
import subprocess

from runner import settings
from runner.confinement import egress, seccomp
from runner.confinement.gate import Gate
from runner.confinement.limits import NOFILE, LimitSpec, cgroup_layout, rlimits
from runner.errors import InternalError
from runner.model import FunctionVersion

log = logging.getLogger(__name__)

TASK_ROOT = "/var/task"
OPT_ROOT = "/opt"  # the function's layers (issue 20)
GUEST_UID_BASE = 200_000  # guest uids: 200000..259999, owned by nobody on the host
GUEST_UID_COUNT = 60_000
_uids = itertools.count()
# /etc entries a runtime needs (dynamic linker cache, time zone, name service, CA roots). Not
# /etc as a whole: it holds shadow, the server's configuration and keys.
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts",
    "host.conf", "services", "protocols", "passwd", "group", "ssl", "ca-certificates",
    "ca-certificates.conf", "mime.types", "alternatives",
)
NETWORK_ETC_FILES = ("resolv.conf", "gai.conf")
USR_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _disabled() -> bool:
    return not settings.current().isolation


@functools.lru_cache(maxsize=1)
def tools() -> tuple[str | None, str | None, str | None]:
    """bwrap, setpriv and prlimit (the last two from util-linux), or None where missing."""
    return shutil.which("bwrap"), shutil.which("setpriv"), shutil.which("prlimit")


@functools.lru_cache(maxsize=1)
def mode() -> str:
    """"root", "userns" or "off" for this host (probed once by running `true` sandboxed)."""
    if _disabled():
        return "off"
    bwrap, setpriv, prlimit = tools()
    if bwrap is None:
        return "off"
    candidates = ["root", "userns"] if os.geteuid() == 0 and setpriv and prlimit else ["userns"]
    for m in candidates:
        argv = _sandbox_argv(m, ["/usr/bin/true"], code_dir=None, tmp_bytes=1 << 20,
                             network=False, uid=GUEST_UID_BASE)
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.debug("isolation mode %s unavailable: %s", m, exc)
            continue
        if r.returncode == 0:
            return m
        log.debug("isolation mode %s unavailable: %s", m, r.stderr.decode(errors="replace").strip())
    return "off"


def problem() -> str | None:
    """Why namespaces are off on this host, or None when they work."""
    if _disabled():
        return "disabled by RUNNER_ISOLATION=off"
    if tools()[0] is None:
        return "bwrap not found (apt-get install bubblewrap)"
    if mode() == "off":
        return ("bwrap cannot create namespaces here (run as root, or allow unprivileged user "
                "namespaces: sysctl kernel.unprivileged_userns_clone=1 / AppArmor userns policy)")
    return None


def wrap(argv: list[str], version: FunctionVersion, tmp_dir: str, *,
         address_space: bool = True, gate: Gate | None = None) -> list[str]:
    """The command line that runs `argv` isolated for `version`. `tmp_dir` is the host scratch
    directory process.py made; inside the sandbox the guest's HOME and TMPDIR are its own /tmp.
    `address_space` is the runtime's tolerance of RLIMIT_AS (used only where no cgroup limits
    memory, exactly as limits.apply decides). `gate` (from new_gate()) holds the sandbox
    before the runtime's exec until released."""
    m = mode()
    if m == "off":
        return list(argv)
    if m == "root":
        st = os.stat(version.code_dir)
        if st.st_mode & 0o005 != 0o005:
            raise InternalError(
                f"code_dir: {version.code_dir} is mode {st.st_mode & 0o777:o}; the guest runs "
                "as an unprivileged uid and needs it world-readable (chmod -R o+rX)"
            )
    uid = GUEST_UID_BASE + next(_uids) % GUEST_UID_COUNT
    spec = LimitSpec.for_version(version, address_space=address_space)
    as_bytes = rlimits(spec, address_space=address_space and cgroup_layout() is None).get(
        resource.RLIMIT_AS)
    # The network policy (egress.py): only the legacy flag shares the host's namespace; every
    # policy gets its own, opened at the gate as wide as the policy says.
    policy = egress.effective(version.config.network, version.config.network_policy)
    args = _sandbox_argv(m, argv, code_dir=version.code_dir, tmp_bytes=spec.tmp_bytes,
                         network=policy == "host", uid=uid, as_bytes=as_bytes,
                         network_files=policy in ("host", "full"), opt_dir=version.opt_dir)
    if gate is None:
        return args
    # bwrap's own options (every bind, with the host paths of the data directory and the code)
    # go through a pipe (--args): the guest sees bwrap as its PID 1, and /proc/1/cmdline would
    # otherwise show all of them. The command after "--" stays on the command line (bwrap
    # reads only options there).
    end = args.index("--")
    gate.carry_options(args[1:end])
    return args[:1] + gate.args() + args[end:]


def seccomp_problem() -> str | None:
    """Why sandboxed guests run without the seccomp filter, or None when they have it."""
    if not settings.current().seccomp:
        return "disabled by RUNNER_SECCOMP=off"
    if mode() == "off":
        return "needs the bubblewrap sandbox, which is off here"
    return seccomp.problem()


def new_gate(program: bytes | None = None) -> Gate | None:
    """A Gate where the sandbox is bwrap's, None where isolation is off. `program`: a
    seccomp filter to load instead of the guest's (seccomp.zygote_program)."""
    return Gate(program, filtered=seccomp_problem() is None) if mode() != "off" else None


def is_wrapper(cmdline: list[str]) -> bool:
    """True for the processes this module puts above a guest (bwrap, prlimit, setpriv): they
    run no guest code. prlimit and setpriv exec the guest, so only bwrap is ever seen."""
    return bool(cmdline) and os.path.basename(cmdline[0]) in ("bwrap", "prlimit", "setpriv")


def guest_returncode(rc: int | None) -> int | None:
    """The guest's status as Popen would report it had it not been wrapped: bwrap exits with
    128+N when its child died of signal N, so that becomes -N (only while isolation is on; a
    guest that itself exits with 128+N is indistinguishable, as in any shell)."""
    if rc is not None and mode() != "off" and 128 < rc < 128 + 65:
        return -(rc - 128)
    return rc


def _ancestors(path: str) -> list[str]:
    out = []
    p = os.path.dirname(path)
    while p not in ("/", ""):
        out.append(p)
        p = os.path.dirname(p)
    return out[::-1]


RUNTIME_DIR = "/var/runtime"  # where the runtime's bootstrap directory is seen (Lambda's path)
RELOCATED = "/opt/runner"  # where other runtime files, and an interpreter under /tmp, are bound


def _bind_path(binds: dict[str, str], src: str, path: str) -> str:
    """Bind `src` read-only and return where `path` (inside `src`) is seen by the guest. Host
    paths are kept, except under /tmp: the guest's /tmp is its own empty tmpfs, so a checkout
    or venv living there (as CI clones may) is bound at RELOCATED/bN instead, neither hidden
    by the tmpfs nor showing up in the guest's /tmp."""
    if not (src == "/tmp" or src.startswith("/tmp/")):
        binds[src] = src
        return path
    dest = binds.get(src) or f"{RELOCATED}/b{sum(d.startswith(RELOCATED) for d in binds.values())}"
    binds[src] = dest
    return dest + path[len(src):]


def _relocate(binds: dict[str, str], src: str, path: str) -> str:
    """Bind directory `src` read-only at a neutral path and return where `path` (inside it) is
    seen: the first such directory (the bootstrap's) at RUNTIME_DIR, others at RELOCATED/bN.
    Guests then see no host path of the runner's checkout in their argv."""
    dest = binds.get(src)
    if dest is None:
        taken = set(binds.values())
        dest = RUNTIME_DIR if RUNTIME_DIR not in taken else \
            f"{RELOCATED}/b{sum(d.startswith(RELOCATED) for d in taken)}"
        binds[src] = dest
    return dest + path[len(src):]


def _sandbox_argv(m: str, argv: list[str], *, code_dir: str | None, tmp_bytes: int,
                  network: bool, uid: int, as_bytes: int | None = None,
                  network_files: bool | None = None, opt_dir: str = "") -> list[str]:
    bwrap, setpriv, prlimit = tools()
    # No --die-with-parent: its PR_SET_PDEATHSIG fires when the *thread* that spawned bwrap
    # exits, and environments are spawned from request threads that come and go. A server
    # that dies instead closes every guest's socket (the bootstraps exit on EOF), and the next
    # start sweeps the dead server's cgroups, killing whatever ignored that (cgroups.sweep).
    args = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox"]
    if not network:
        args.append("--unshare-net")  # bwrap brings up loopback inside
    if m == "userns":
        args.append("--unshare-user")
    # Read-only system: /usr, and the merged-/usr links (or the directories on hosts without).
    args += ["--ro-bind", "/usr", "/usr"]
    for name in USR_LINKS:
        host = "/" + name
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    # The runtime: its interpreter by real path (a venv's symlinks point outside the venv), the
    # interpreter's install prefix unless under /usr, and the directory of every absolute path
    # argument (the bootstrap script: at /var/runtime). Code-dir paths move to /var/task.
    new_argv = []
    binds: dict[str, str] = {}
    for i, a in enumerate(argv):
        if code_dir and (a == code_dir or a.startswith(code_dir.rstrip("/") + "/")):
            new_argv.append(TASK_ROOT + a[len(code_dir.rstrip("/")):])
            continue
        if i == 0:
            a = os.path.realpath(a)
            prefix = os.path.dirname(os.path.dirname(a))
            if not (prefix + "/").startswith("/usr/"):
                a = _bind_path(binds, prefix, a)
        elif a.startswith("/") and os.path.exists(a) and not a.startswith("/usr/"):
            d = a if os.path.isdir(a) else os.path.dirname(a)
            a = _relocate(binds, d, a)
        new_argv.append(a)
    args += ["--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    # Parents of mount points are created 0755 first: bwrap would otherwise make them 0700
    # (root-owned), and the unprivileged guest must traverse them.
    made = set()
    for dest in sorted([*binds.values(), TASK_ROOT, "/etc/x"]):
        for anc in _ancestors(dest):
            if anc not in made and anc not in ("/usr",):
                args += ["--perms", "0755", "--dir", anc]
                made.add(anc)
    for src, dest in sorted(binds.items()):
        args += ["--ro-bind", src, dest]
    net_files = network if network_files is None else network_files
    for name in ETC_FILES + (NETWORK_ETC_FILES if net_files else ()):
        args += ["--ro-bind-try", "/etc/" + name, "/etc/" + name]
    if opt_dir:
        # The function's layers, merged and read-only (storage/layers.py), where Lambda puts
        # them; runtimes find their modules there (lambda_env.py: NODE_PATH, _RUNNER_OPT).
        args += ["--ro-bind", opt_dir, OPT_ROOT]
    if code_dir:
        args += ["--ro-bind", code_dir, TASK_ROOT, "--chdir", TASK_ROOT,
                 "--setenv", "LAMBDA_TASK_ROOT", TASK_ROOT]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
             "--remount-ro", "/"]
    if m == "root":
        # Keep only what setpriv needs to switch uid and empty the bounding set; setpriv's
        # setresuid away from 0 clears the permitted/effective sets, and --inh-caps/-all plus
        # --bounding-set=-all leave nothing to regain (no_new_privs blocks setuid binaries).
        # prlimit(1) runs first, while still root: prlimit(2) from the server on a process of
        # the guest uid needs CAP_SYS_RESOURCE, which containers may withhold even from root
        # (limits.apply then verifies the values instead of setting them).
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP", "--",
                 prlimit, "--core=0:0", f"--nofile={NOFILE}:{NOFILE}",
                 f"--fsize={tmp_bytes}:{tmp_bytes}",
                 *([f"--as={as_bytes}:{as_bytes}"] if as_bytes else []), "--",
                 setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        args += ["--cap-drop", "ALL", "--"]
    return args + new_argv
