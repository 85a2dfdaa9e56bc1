"""Shared fixtures: an embedded Runner on a temp data dir, and the repository's guests."""

from __future__ import annotations

import os

import pytest

from runner import Runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "guests")


def guest(*parts: str) -> str:
    return os.path.join(GUESTS, *parts)


@pytest.fixture
def runner(tmp_path):
    r = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    yield r
    r.close()
