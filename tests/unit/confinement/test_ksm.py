"""RUNNER_KSM (confinement/ksm.py): what the server tells an operator about the host's KSM."""

import logging

from runner.confinement import ksm
from runner.pool.pool import PoolManager


def _sysfs(tmp_path, run):
    (tmp_path / "run").write_text(f"{run}\n")
    return str(tmp_path)


def test_host_with_ksm_off_is_named_with_the_fix(tmp_path):
    problem = ksm.host_problem(_sysfs(tmp_path, 0))
    assert "KSM is off" in problem and "/run is 0" in problem and "echo 1 >" in problem


def test_kernel_without_ksm_is_named(tmp_path):
    problem = ksm.host_problem(str(tmp_path / "absent"))
    assert "no KSM" in problem and "RUNNER_KSM" in problem


def test_host_with_ksm_running_has_no_problem(tmp_path):
    assert ksm.host_problem(_sysfs(tmp_path, 1)) is None


def test_server_warns_at_start_when_the_hosts_ksm_is_off(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ksm, "KSM_DIR", _sysfs(tmp_path, 0))
    monkeypatch.setenv("RUNNER_KSM", "on")
    with caplog.at_level(logging.WARNING, logger="runner.pool.pool"):
        PoolManager({}, prestart=False).close()
    assert any("RUNNER_KSM=on has no effect" in r.getMessage() and "KSM is off" in r.getMessage()
               for r in caplog.records)


def test_server_says_nothing_when_ksm_is_not_asked_for(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ksm, "KSM_DIR", _sysfs(tmp_path, 0))
    monkeypatch.delenv("RUNNER_KSM", raising=False)
    with caplog.at_level(logging.WARNING, logger="runner.pool.pool"):
        PoolManager({}, prestart=False).close()
    assert not any("RUNNER_KSM" in r.getMessage() for r in caplog.records)


def test_kernel_release_is_read_as_major_minor():
    assert ksm._kernel_version("6.18.44-fc-v1272") == (6, 18)
    assert ksm._kernel_version("6.7.0") == (6, 7)
    assert ksm._kernel_version("5.15.0-91-generic") == (5, 15)
    assert ksm._kernel_version("garbage") == (0, 0)


def test_a_kernel_that_resets_the_mark_at_exec_is_named_and_nothing_is_marked():
    problem = ksm.mark_launcher("Node.js", release="6.6.9")
    assert "Node.js" in problem and "6.6.9" in problem and "6.7" in problem


def test_marking_the_launcher_marks_this_process_until_unset():
    try:
        assert ksm.mark_launcher("Node.js") is None  # this host's kernel is 6.18
        assert ksm.is_marked()
    finally:
        assert ksm.set_mergeable(False) is None
    assert not ksm.is_marked()
