"""The cgroup hierarchy the runner's groups live in: finding it (v2 preferred, else v1), the
file primitives every group is written through, and removing groups.

Split from cgroups.py, which holds one environment's groups (`CgroupSet`): this module knows
where groups go and how to write and remove them, not what an environment puts in them. The
wasm runtime's per-thread CPU lanes (runner/environments/wasm/cpu.py) use the primitives here
for groups that are not an environment's.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass

from runner import settings
from runner.errors import CgroupUnavailable

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "pids", "freezer")
V2_CONTROLLERS = ("memory", "cpu", "pids")
CPU_PERIOD_US = 20_000  # short period: a throttled guest waits <= 20 ms, not 100 ms
CPU_QUOTA_MIN_US = 1_000  # the kernel refuses quotas under 1 ms
CFS_QUOTA_OFF = b"-1"  # v1 cpu.cfs_quota_us: no quota


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def write_value(path: str, value: str) -> None:
    # One write(2) per value: cgroup files parse each write as one command.
    with open(path, "w") as f:
        f.write(value)


def _own_cgroups() -> dict[str, str]:
    """Our own cgroup per v1 controller, and under key '' the v2 path."""
    out: dict[str, str] = {}
    for line in read_text("/proc/self/cgroup").splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def v1_own_group(controller: str, root: str = CGROUP_ROOT) -> str:
    """This process's own group in the cgroup v1 hierarchy of `controller`, e.g.
    /sys/fs/cgroup/cpu/<our path>. Raises CgroupUnavailable when that hierarchy is not mounted
    at `root`/`controller`, OSError when /proc/self/cgroup cannot be read."""
    mount = os.path.join(root, controller)
    if not os.path.exists(os.path.join(mount, "cgroup.procs")):
        raise CgroupUnavailable(f"the {controller} controller is not mounted at {mount}")
    return os.path.join(mount, _own_cgroups().get(controller, "/").lstrip("/"))


def write_cfs_v1(quota_fd: int, period_fd: int, period_us: int, quota_us: int) -> None:
    """Set a v1 group's CFS period and quota through fds open for writing on its
    cpu.cfs_quota_us and cpu.cfs_period_us. The quota goes off first: the kernel checks each
    write against the other value (and the parent's ratio), so the old quota with the new
    period could be refused where the final pair is valid."""
    os.pwrite(quota_fd, CFS_QUOTA_OFF, 0)
    os.pwrite(period_fd, str(period_us).encode(), 0)
    os.pwrite(quota_fd, str(quota_us).encode(), 0)


def remove_group(path: str, timeout: float = 0.0) -> bool:
    """rmdir one group (its kernel files go with it); a missing one counts as removed. EBUSY
    (a process or thread still inside, or a child group) is retried for `timeout` seconds:
    killed processes leave their group only once their parent has reaped them. Never raises:
    logs and returns False when the group stays."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                log.warning("could not remove cgroup %s: %s", path, exc)
                return False
            time.sleep(0.005)


def remove_tree(path: str) -> None:
    """Remove a group and every group below it, deepest first (rmdir refuses a group that has
    children). Every directory in a cgroup tree is a group; the files are the kernel's."""
    for parent, groups, _ in os.walk(path, topdown=False):
        for group in groups:
            remove_group(os.path.join(parent, group))
    remove_group(path)


def _v2_mount(root: str) -> str | None:
    for cand in (root, os.path.join(root, "unified")):
        if os.path.exists(os.path.join(cand, "cgroup.controllers")):
            return cand
    return None


@dataclass(frozen=True)
class Layout:
    """Where environments' groups go on this host."""

    version: int  # 1 or 2
    parents: dict[str, str]  # v1: controller -> parent dir; v2: {"": parent dir}

    def describe(self) -> str:
        return f"cgroup v{self.version} under " + ", ".join(sorted(set(self.parents.values())))


def detect(root: str = CGROUP_ROOT) -> Layout:
    """Find a writable place for environment groups, preferring v2. Raises CgroupUnavailable
    with every reason it tried when neither works."""
    reasons = []
    try:
        return _detect_v2(root)
    except (CgroupUnavailable, OSError) as exc:
        reasons.append(f"v2: {exc}")
    try:
        return _detect_v1(root)
    except (CgroupUnavailable, OSError) as exc:
        reasons.append(f"v1: {exc}")
    raise CgroupUnavailable("; ".join(reasons))


def _detect_v2(root: str) -> Layout:
    mount = _v2_mount(root)
    if mount is None:
        raise CgroupUnavailable(f"no cgroup2 mount at {root} or {root}/unified")
    parent = settings.current().cgroup_parent
    if parent:
        parent = os.path.join(mount, parent.lstrip("/"))
    else:
        own = _own_cgroups().get("", "/")
        base = os.path.join(mount, own.lstrip("/"))
        have = set(read_text(os.path.join(base, "cgroup.controllers")).split())
        missing = [c for c in V2_CONTROLLERS if c not in have]
        if missing:
            raise CgroupUnavailable(
                f"controllers {', '.join(missing)} not delegated to {base} "
                "(run the server in a systemd unit with Delegate=yes, or set "
                "RUNNER_CGROUP_PARENT to a delegated group)"
            )
        parent = os.path.join(base, "runner")
        _enable_v2_subtree(base, parent)
    os.makedirs(parent, exist_ok=True)
    write_value(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in V2_CONTROLLERS))
    return Layout(2, {"": parent})


def _enable_v2_subtree(base: str, parent: str) -> None:
    """Enable our controllers in `base` for its children. cgroup v2's no-internal-processes rule
    forbids that while `base` holds processes, so the server's own processes move to a leaf
    `base/server` first (the same thing systemd's delegation guide prescribes)."""
    ctl = os.path.join(base, "cgroup.subtree_control")
    want = " ".join("+" + c for c in V2_CONTROLLERS)
    try:
        write_value(ctl, want)
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
    leaf = os.path.join(base, "server")
    os.makedirs(leaf, exist_ok=True)
    for pid in read_text(os.path.join(base, "cgroup.procs")).split():
        try:
            write_value(os.path.join(leaf, "cgroup.procs"), pid)
        except OSError:
            pass  # exited meanwhile, or a kernel thread: it cannot block the switch below
    log.info("moved the server's processes to %s to delegate controllers to %s", leaf, parent)
    write_value(ctl, want)


def _detect_v1(root: str) -> Layout:
    parents = {}
    for c in V1_CONTROLLERS:
        parent = os.path.join(v1_own_group(c, root), "runner")
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise CgroupUnavailable(f"cannot create {parent}: {exc.strerror} (run as root)") from exc
        parents[c] = parent
    return Layout(1, parents)
