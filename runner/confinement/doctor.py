"""`runner doctor`: which protections this host gives subprocess environments, and the start-up
warning that lists the ones that are off.

`rows()` probes the host (it creates and removes one cgroup and runs one sandboxed `true`), and
returns one `Row` per protection; `format_table(rows)` renders them for a terminal. The CLI calls
both; `warn_if_degraded()` is called once when backends are created.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass

from runner import settings
from runner.confinement import cgroup_hierarchy, cgroups, limits, namespaces, seccomp, tmpfs

log = logging.getLogger("runner.confinement")
_warned = threading.Event()


@dataclass(frozen=True)
class Row:
    protection: str
    enabled: bool
    mechanism: str  # how it is enforced here, or what stands in for it
    fix: str = ""  # how to turn it on, when off


def _cgroup_rows() -> list[Row]:
    layout = limits.cgroup_layout()
    if layout is None:
        why = limits.cgroup_problem() or "unknown"
        fix = f"cgroups unavailable: {why}"
        return [
            Row("memory hard limit", False, "RLIMIT_AS (address space; not for Node.js)", fix),
            Row("swap disabled", False, "none", fix),
            Row("OOM kills reported from the kernel counter", False, "MemoryError only", fix),
            Row("CPU share proportional to memory", False, "none: guests share all cores", fix),
            Row("pids limit (fork bombs)", False, "none", fix),
            Row("kill every process on destroy", namespaces.mode() != "off",
                "PID namespace teardown" if namespaces.mode() != "off" else "process group only",
                fix),
        ]
    v = layout.version
    try:
        # Probe for real: a group with our limits must be creatable, not just the parent.
        cgroups.CgroupSet.create(layout, 128 * limits.MB, 0.1, 16).close()
        ok, fix = True, ""
    except OSError as exc:
        ok, fix = False, f"cannot create a group under {layout.describe()}: {exc}"
    mem = "memory.max" if v == 2 else "memory.limit_in_bytes"
    swap = "memory.swap.max=0" if v == 2 else "memory.memsw.limit_in_bytes=limit, swappiness 0"
    oom = "memory.events oom_kill" if v == 2 else "memory.oom_control oom_kill"
    cpu = "cpu.max" if v == 2 else "cpu.cfs_quota_us/cfs_period_us"
    kill = "cgroup.kill" if v == 2 else "freezer FROZEN + SIGKILL all"
    if namespaces.mode() != "off":
        kill += ", PID namespace teardown"
    return [
        Row("memory hard limit", ok, f"cgroup v{v} {mem}", fix),
        Row("swap disabled", ok, f"cgroup v{v} {swap}", fix),
        Row("OOM kills reported from the kernel counter", ok, f"cgroup v{v} {oom}", fix),
        Row("CPU share proportional to memory", ok,
            f"cgroup v{v} {cpu} (memory_mb/1769 of a CPU, period {cgroup_hierarchy.CPU_PERIOD_US} us)", fix),
        Row("pids limit (fork bombs)", ok, f"cgroup v{v} pids.max={limits.PIDS}", fix),
        Row("kill every process on destroy", ok, kill, fix),
    ]


def _namespace_rows() -> list[Row]:
    m = namespaces.mode()
    on = m != "off"
    fix = "" if on else (namespaces.problem() or "")
    uid = (f"setpriv to uid {namespaces.GUEST_UID_BASE}+n, one per environment" if m == "root"
           else "server's uid inside a user namespace" if m == "userns" else "server's uid")
    return [
        Row("private file-system view (code read-only at /var/task)", on, "bwrap mount namespace", fix),
        Row("private size-limited /tmp", on, "tmpfs size=ephemeral_storage_mb" if on
            else "RLIMIT_FSIZE per file only", fix),
        Row("own PID namespace (cannot see or signal the server)", on, "bwrap --unshare-pid", fix),
        Row("no network unless config.network", on, "bwrap --unshare-net (loopback only)", fix),
        # Network policies (egress.py): allow lists need the namespace; full needs slirp4netns.
        Row("network policies (allow=IP:PORT relay; full without host loopback)",
            on and shutil.which("slirp4netns") is not None,
            "own namespace + relay / slirp4netns --disable-host-loopback",
            fix or ("" if shutil.which("slirp4netns") else
                    "apt-get install slirp4netns (needed by --network full)")),
        Row("unprivileged uid/gid", m == "root", uid,
            "" if m == "root" else (fix or "run the server as root to give each guest its own uid")),
        Row("seccomp filter (no new namespaces, mount, io_uring, keyrings, bpf, ptrace, ...)",
            namespaces.seccomp_problem() is None,
            f"bwrap --seccomp, {len(seccomp.DENIED)} calls and namespace clone flags refused",
            namespaces.seccomp_problem() or ""),
        # issue 24 (decision 068): opt-in, so off is a choice, not a missing protection; the
        # zygote's probe child decides per zygote when it is on.
        Row("own /tmp, PID and IPC per environment of one version (Python zygote)",
            on if settings.current().env_namespaces else True,
            "clone into new user/mount/PID/IPC namespaces per child + Landlock scope"
            if settings.current().env_namespaces else
            "off (the default, decision 068): environments share their zygote's; "
            "RUNNER_ENV_NAMESPACES=on opts in",
            fix if settings.current().env_namespaces else ""),
        Row("no capabilities, no_new_privs", on,
            "bwrap --cap-drop ALL + setpriv bounding set empty" if m == "root"
            else "bwrap --cap-drop ALL" if on else "none", fix),
    ]


def rows() -> list[Row]:
    """One row per protection, probed on this host."""
    return [
        *_namespace_rows(),
        *_cgroup_rows(),
        Row("rlimits: no core dumps, 1024 fds, file size <= /tmp size", True, "prlimit"),
        Row("wasm /tmp capped at ephemeral_storage_mb", tmpfs.probe() is None,
            "tmpfs per environment, size=min(ephemeral_storage_mb, memory_mb)", tmpfs.probe() or ""),
    ]


def format_table(table: list[Row]) -> str:
    w = max(len(r.protection) for r in table)
    lines = [f"{'protection':<{w}}  {'status':<6}  how / fix", "-" * (w + 40)]
    for r in table:
        lines.append(f"{r.protection:<{w}}  {'on' if r.enabled else 'OFF':<6}  {r.mechanism}")
        if not r.enabled and r.fix:
            lines.append(f"{'':<{w}}  {'':<6}  fix: {r.fix}")
    return "\n".join(lines)


def degraded() -> list[Row]:
    return [r for r in rows() if not r.enabled]


def warn_if_degraded() -> list[Row]:
    """Log one warning per process listing every protection that is off. Returns them."""
    if _warned.is_set():
        return []
    _warned.set()
    off = degraded()
    if off:
        reasons = list(dict.fromkeys(r.fix for r in off if r.fix))
        log.warning(
            "isolation is degraded on this host (pid %d); these protections are OFF: %s. "
            "Why: %s. Run `runner doctor` for the table.",
            os.getpid(), "; ".join(r.protection for r in off), "; ".join(reasons) or "unknown",
        )
    return off
