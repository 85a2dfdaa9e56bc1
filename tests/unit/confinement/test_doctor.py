"""doctor.py: the protection table and the one start-up warning."""

from __future__ import annotations

import logging

from runner.confinement import doctor, limits, namespaces


def test_every_protection_is_on_on_this_host():
    """CI runs as root with bubblewrap installed by scripts/setup-system.sh and cgroups
    writable: a missing install step shows up here, not as a silently weaker suite."""
    rows = doctor.rows()
    off = [(r.protection, r.fix) for r in rows if not r.enabled]
    assert off == []
    assert namespaces.mode() == "root"
    assert limits.cgroup_layout() is not None


def test_table_lists_every_row_with_status():
    rows = doctor.rows()
    text = doctor.format_table(rows)
    for r in rows:
        assert r.protection in text
    assert text.count("\n") >= len(rows)


def test_fallback_rows_say_what_is_off_and_the_fix(monkeypatch):
    monkeypatch.setenv("RUNNER_CGROUPS", "off")
    monkeypatch.setenv("RUNNER_ISOLATION", "off")
    limits.cgroup_layout.cache_clear()
    namespaces.mode.cache_clear()
    try:
        rows = doctor.rows()
        off = {r.protection: r for r in rows if not r.enabled}
        assert "memory hard limit" in off and "own PID namespace (cannot see or signal the server)" in off
        assert "RUNNER_CGROUPS=off" in off["memory hard limit"].fix
        assert "RUNNER_ISOLATION=off" in off["private size-limited /tmp"].fix
        # rlimits remain the floor everywhere.
        assert [r.enabled for r in rows if r.protection.startswith("rlimits")] == [True]
        text = doctor.format_table(rows)
        assert "OFF" in text and "fix: " in text
    finally:
        monkeypatch.undo()
        limits.cgroup_layout.cache_clear()
        namespaces.mode.cache_clear()


def test_degraded_host_warns_once_listing_protections(monkeypatch, caplog):
    monkeypatch.setenv("RUNNER_CGROUPS", "off")
    limits.cgroup_layout.cache_clear()
    monkeypatch.setattr(doctor, "_warned", type(doctor._warned)())
    try:
        with caplog.at_level(logging.WARNING, logger="runner.confinement"):
            first = doctor.warn_if_degraded()
            second = doctor.warn_if_degraded()
        assert first and second == []
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        msg = warnings[0].getMessage()
        assert "memory hard limit" in msg and "pids limit" in msg and "RUNNER_CGROUPS=off" in msg
    finally:
        monkeypatch.undo()
        limits.cgroup_layout.cache_clear()


def test_rlimit_fallback_still_runs_guests(monkeypatch, tmp_path):
    """No cgroups, no namespaces: the environment starts, RLIMIT_AS stands in for memory."""
    from runner.environments.backends import default_backends
    from tests.security.conftest import make_version, request, result

    monkeypatch.setenv("RUNNER_CGROUPS", "off")
    monkeypatch.setenv("RUNNER_ISOLATION", "off")
    limits.cgroup_layout.cache_clear()
    namespaces.mode.cache_clear()
    try:
        v = make_version(tmp_path, "plain", """
            import resource
            def handler(event, context):
                return {"as": resource.getrlimit(resource.RLIMIT_AS)[0]}
        """)
        env = default_backends(str(tmp_path / "envs"))["python"].create(v)
        env.start()
        try:
            out = result(env.invoke(request()))
            assert out["as"] == 128 * limits.MB + limits.AS_HEADROOM_BYTES
            assert env._enforcement.kind == "rlimit"
        finally:
            env.destroy()
    finally:
        monkeypatch.undo()
        limits.cgroup_layout.cache_clear()
        namespaces.mode.cache_clear()


def test_cli_doctor_prints_the_table(capsys):
    from runner.cli.main import main

    assert main(["doctor"]) == 0  # every protection is on here (see the first test)
    out = capsys.readouterr().out
    for r in doctor.rows():
        assert r.protection in out
    assert main(["doctor", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert {r["protection"] for r in rows} == {r.protection for r in doctor.rows()}
