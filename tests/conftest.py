"""Shared fixtures: an embedded Runner on a temp data dir, and the repository's guests."""

from __future__ import annotations

import os

import pytest

from runner import Runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "guests")


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="tests/reliability at the sizes the hardening issue measured "
                          "(make test-long); without it, a short form of each")


@pytest.fixture
def long_run(request) -> bool:
    """True under --long: reliability tests then use their full sizes and figures."""
    return request.config.getoption("--long")


def guest(*parts: str) -> str:
    return os.path.join(GUESTS, *parts)


@pytest.fixture
def runner(tmp_path):
    r = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    yield r
    r.close()


@pytest.fixture
def guests_see_host_files(monkeypatch):
    """For tests whose guest reports to the test through a host directory (tests/guests/
    recorder): run environments without namespaces, since a sandboxed guest cannot see any host
    path (docs/security.md). Limits (cgroups, rlimits) stay on. Inherited by subprocess servers."""
    from runner.confinement import namespaces

    monkeypatch.setenv("RUNNER_ISOLATION", "off")
    namespaces.mode.cache_clear()
    yield
    monkeypatch.undo()
    namespaces.mode.cache_clear()
