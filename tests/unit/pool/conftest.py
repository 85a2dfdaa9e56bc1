"""Fixtures of the pre-start pool's tests (test_prestart.py, test_prestart_init.py)."""

from __future__ import annotations

import pytest

from runner.environments.backends import default_backends
from runner.pool import prestart as ps


@pytest.fixture
def backends(tmp_path):
    return default_backends(str(tmp_path / "envs"))


@pytest.fixture
def pre(backends):
    p = ps.PreStartPool(backends)
    yield p
    p.close()
