"""cgroups.py against a fake cgroup v2 tree (files in a temp dir: checks what is written where
and how counters are parsed) and against this host's real hierarchy."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from runner.confinement import cgroup_hierarchy, cgroups, limits

MB = 1 << 20


def fake_v2(tmp_path):
    """A plain directory stands in for a v2 group: mkdir there does not create the kernel's
    files, so writes land as ordinary files and counters are written by the test."""
    parent = tmp_path / "runner"
    parent.mkdir()
    return cgroup_hierarchy.Layout(2, {"": str(parent)})


def test_v2_limits_are_written_to_the_v2_files(tmp_path):
    layout = fake_v2(tmp_path)
    cg = cgroups.CgroupSet.create(layout, 256 * MB, 512 / 1769, 64)
    d = tmp_path / "runner" / cg.name
    assert (d / "memory.max").read_text() == str(256 * MB)
    assert (d / "memory.swap.max").read_text() == "0"
    quota = int(cgroup_hierarchy.CPU_PERIOD_US * 512 / 1769)
    assert (d / "cpu.max").read_text() == f"{quota} {cgroup_hierarchy.CPU_PERIOD_US}"
    assert (d / "pids.max").read_text() == "64"


def test_v2_counters_are_parsed(tmp_path):
    cg = cgroups.CgroupSet.create(fake_v2(tmp_path), 128 * MB, 0.1, 16)
    d = tmp_path / "runner" / cg.name
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n")
    (d / "memory.peak").write_text("134217728\n")
    (d / "pids.events").write_text("max 3\n")
    (d / "cpu.stat").write_text("usage_usec 10\nthrottled_usec 4500\n")
    assert cg.oom_kills() == 1
    assert cg.peak_memory() == 128 * MB
    assert cg.pids_limit_hits() == 3
    assert cg.cpu_throttled_us() == 4500


def test_cpu_quota_never_below_kernel_minimum(tmp_path):
    cg = cgroups.CgroupSet.create(fake_v2(tmp_path), 128 * MB, 0.001, 16)
    d = tmp_path / "runner" / cg.name
    assert (d / "cpu.max").read_text().split()[0] == str(cgroup_hierarchy.CPU_QUOTA_MIN_US)


def test_limit_spec_cpu_is_memory_over_1769_capped_at_cores():
    from runner.model import FunctionConfig, FunctionVersion

    def spec(mb):
        v = FunctionVersion("f", "$LATEST", 1, FunctionConfig("python", "app.handler", memory_mb=mb), "s", "/x")
        return limits.LimitSpec.for_version(v)

    assert spec(1769).cpu_fraction == pytest.approx(1.0)
    assert spec(128).cpu_fraction == pytest.approx(128 / 1769)
    assert spec(10240).cpu_fraction == float(os.cpu_count())


def test_apply_places_a_process_tree_by_pid_on_this_host():
    """The zygote/wrapper contract: any pid, with its child already forked; the leaf (where
    guest code runs) goes into the group, the waiting wrapper above it stays put, and release
    kills the leaf though nobody signalled it directly."""
    layout = limits.cgroup_layout()
    assert layout is not None, limits.cgroup_problem()
    code = ("import os,time\nif os.fork()==0:\n    time.sleep(30)\nelse:\n    os.wait()\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    try:
        import time

        import psutil

        deadline = time.monotonic() + 5
        while not psutil.Process(p.pid).children() and time.monotonic() < deadline:
            time.sleep(0.01)
        child = psutil.Process(p.pid).children()[0].pid
        enf = limits.apply(p.pid, limits.LimitSpec(memory_bytes=200 * MB, cpu_fraction=0.5, pids=50))
        assert enf.group.pids() == [child]
        mem_file = "memory.max" if layout.version == 2 else "memory.limit_in_bytes"
        ctl = "" if layout.version == 2 else "memory"
        with open(os.path.join(enf.group.dirs[ctl], mem_file)) as f:
            assert int(f.read()) == 200 * MB
        assert psutil.Process(child).rlimit(resource.RLIMIT_NOFILE) == (1024, 1024)
        assert not enf.oom_killed()
        dirs = list(enf.group.dirs.values())
        assert dirs and all(os.path.isdir(d) for d in dirs)
        enf.release()
        assert p.wait(timeout=5) == 0  # the wrapper's wait() returned: its child was killed
        assert not psutil.pid_exists(child)
        assert [d for d in dirs if os.path.exists(d)] == []
    finally:
        p.kill()
        p.wait()


def test_sweep_removes_groups_of_dead_runners_only(tmp_path):
    layout = fake_v2(tmp_path)
    parent = tmp_path / "runner"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (parent / f"env-{dead.pid}-1").mkdir()  # its creator is gone
    (parent / f"env-{os.getpid()}-999").mkdir()  # ours
    (parent / "env-1-1").mkdir()  # pid 1 is alive
    assert cgroups.sweep(layout) == 1
    assert sorted(p.name for p in parent.iterdir()) == sorted([f"env-{os.getpid()}-999", "env-1-1"])


def test_release_kills_a_setsid_daemon_without_namespaces(monkeypatch, tmp_path):
    """Without a PID namespace to tear down, the cgroup alone (v1: freeze + SIGKILL every
    member; v2: cgroup.kill) must reach a grandchild that left the process group."""
    import time

    import psutil

    from runner.confinement import namespaces
    from runner.environments.backends import ProcessBackend
    from runner.environments.python.runtime import PythonRuntime
    from tests.security.conftest import make_version, request, result

    monkeypatch.setenv("RUNNER_ISOLATION", "off")
    namespaces.mode.cache_clear()
    try:
        v = make_version(tmp_path, "daemon", """
            import os
            def handler(event, context):
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.closerange(0, 1024)
                        os.execv("/usr/bin/sleep", ["sleep", "3141"])
                    os._exit(0)
                os.wait()
                return "ok"
        """)
        os.makedirs(str(tmp_path / "envs"), exist_ok=True)
        env = ProcessBackend(PythonRuntime(), str(tmp_path / "envs")).create(v)
        env.start()
        assert result(env.invoke(request())) == "ok"
        group = env._enforcement.group
        deadline = time.monotonic() + 3
        daemon = []
        while not daemon and time.monotonic() < deadline:
            daemon = [p for p in group.pids() if "3141" in " ".join(psutil.Process(p).cmdline())]
        assert len(daemon) == 1
        assert os.getpgid(daemon[0]) != os.getpgid(env.pid)  # out of reach of killpg
        env.destroy()
        deadline = time.monotonic() + 3
        while psutil.pid_exists(daemon[0]) and time.monotonic() < deadline:
            if psutil.Process(daemon[0]).status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.02)
        assert not psutil.pid_exists(daemon[0]) or psutil.Process(daemon[0]).status() == psutil.STATUS_ZOMBIE
    finally:
        monkeypatch.undo()
        namespaces.mode.cache_clear()


def test_cpu_quota_can_be_left_for_later(tmp_path):
    # A sandbox placed before its runtime starts (namespaces.Gate) gets memory and pids limits
    # at once and the CPU quota after the runtime's hello.
    cg = cgroups.CgroupSet.create(fake_v2(tmp_path), 256 * MB, None, 64)
    d = tmp_path / "runner" / cg.name
    assert not (d / "cpu.max").exists()  # what the kernel starts a group with: no quota
    assert (d / "memory.max").read_text() == str(256 * MB) and (d / "pids.max").read_text() == "64"
    cg.set_cpu(0.5)
    assert (d / "cpu.max").read_text() == f"{cgroup_hierarchy.CPU_PERIOD_US // 2} {cgroup_hierarchy.CPU_PERIOD_US}"


def test_v2_memory_limit_is_rewritten_in_place(tmp_path):
    cg = cgroups.CgroupSet.create(fake_v2(tmp_path), 128 * MB, 0.1, 16)
    d = tmp_path / "runner" / cg.name
    cg.set_memory(300 * MB)
    assert (d / "memory.max").read_text() == str(300 * MB) and cg.memory_limit() == 300 * MB
    assert (d / "memory.swap.max").read_text() == "0"  # swap stays off
    (d / "memory.max").write_text("max\n")
    assert cg.memory_limit() >= 1 << 62


def test_raising_a_real_groups_memory_limit_keeps_swap_off():
    """On this host's hierarchy (v1 here: memory+swap must move with the limit, in the order
    the kernel accepts), raise then lower a live group's limit; rlimit-only enforcement says
    it has nothing to raise."""
    layout = limits.cgroup_layout()
    assert layout is not None, limits.cgroup_problem()
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        enf = limits.apply(p.pid, limits.LimitSpec(memory_bytes=128 * MB, cpu_fraction=0.5, pids=50))
        assert enf.raise_memory_limit(512 * MB) is True
        assert enf.group.memory_limit() == 512 * MB
        assert enf.raise_memory_limit(256 * MB) is True
        assert enf.group.memory_limit() == 512 * MB  # never lowered by a raise
        enf.group.set_memory(200 * MB)  # lowering works too (order reversed on v1)
        assert enf.group.memory_limit() == 200 * MB
        if layout.version == 1:
            memsw = os.path.join(enf.group.dirs["memory"], "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                with open(memsw) as f:
                    assert int(f.read()) == 200 * MB
        enf.release()
    finally:
        p.kill()
        p.wait()
    assert limits.Enforcement(p.pid, limits.LimitSpec(128 * MB, 0.5), None).raise_memory_limit(1 << 30) is False


def test_the_host_descriptor_limit_is_raised_to_its_hard_limit():
    # In a child, so this test process keeps its own limit.
    code = ("import resource\nfrom runner.confinement import limits\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
            "got = limits.raise_host_fd_limit()\n"
            "assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == got > 256, got\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert out.stdout.strip() == "ok", out.stderr


def test_dead_owner_entries_names_only_leftovers_of_dead_processes(tmp_path):
    from runner.confinement.stale import dead_owner_entries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"runner-wasm-{dead.pid}-1", f"runner-wasm-{os.getpid()}-1", "runner-wasm-1-1",
                 f"runner-wasm-io-{dead.pid}-abc", "runner-wasm-x-1", f"other-{dead.pid}-1"):
        (tmp_path / name).mkdir()
    assert dead_owner_entries(str(tmp_path), "runner-wasm-") == [f"runner-wasm-{dead.pid}-1"]
    assert dead_owner_entries(str(tmp_path), "runner-wasm-io-") == [f"runner-wasm-io-{dead.pid}-abc"]
    assert dead_owner_entries(str(tmp_path / "missing"), "runner-wasm-") == []


def test_remove_tree_removes_child_groups_first(tmp_path):
    # Plain directories stand in for groups: rmdir refuses a non-empty one, as the kernel
    # refuses a group with children.
    (tmp_path / "g" / "lane-1" / "sub").mkdir(parents=True)
    (tmp_path / "g" / "lane-2").mkdir()
    cgroup_hierarchy.remove_tree(str(tmp_path / "g"))
    assert not (tmp_path / "g").exists()
    assert cgroup_hierarchy.remove_group(str(tmp_path / "g"))  # already gone counts as removed


def test_write_cfs_v1_turns_the_quota_off_before_changing_the_period(monkeypatch):
    # The order is the point (a kernel file keeps only the last value): recorded, not written.
    quota, period = 101, 102
    writes = []
    monkeypatch.setattr(cgroup_hierarchy.os, "pwrite",
                        lambda fd, data, off: writes.append(({quota: "q", period: "p"}[fd], data)))
    cgroup_hierarchy.write_cfs_v1(quota, period, 13_800, 1_000)
    monkeypatch.undo()
    assert writes == [("q", b"-1"), ("p", b"13800"), ("q", b"1000")]
