"""The idle freezer (pool/freezer.py): what is frozen, when, and what happens when it fails."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from runner.pool import freezer
from runner.pool.freezer import FREEZE_AFTER_S, IdleFreezer


class _Env:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.freezes = 0
        self.destroyed = False

    def freeze(self) -> None:
        if self.fail:
            raise OSError("the group is gone")
        self.freezes += 1

    def destroy(self) -> None:
        self.destroyed = True


@dataclass
class _Idle:
    env: object
    since: float
    frozen: bool = False


@dataclass
class _Version:
    key: str = "f#1"


@dataclass
class _VP:
    idle: list = field(default_factory=list)
    version: _Version = field(default_factory=_Version)


def _freezer(vp):
    return IdleFreezer(threading.Lock(), lambda: [(vp, i) for i in vp.idle], threading.Event())


def test_only_environments_idle_long_enough_are_frozen_once():
    recent, old = _Idle(_Env(), since=100.0), _Idle(_Env(), since=99.0 - FREEZE_AFTER_S)
    vp = _VP([recent, old])
    f = _freezer(vp)
    assert f.freeze_due(100.0) == 1
    assert (recent.env.freezes, old.env.freezes) == (0, 1) and old.frozen and not recent.frozen
    assert f.freeze_due(100.0) == 0 and old.env.freezes == 1  # never twice
    assert f.freeze_due(101.0 + FREEZE_AFTER_S) == 1 and recent.frozen


def test_an_environment_that_cannot_be_frozen_is_replaced():
    bad, good = _Idle(_Env(fail=True), since=0.0), _Idle(_Env(), since=0.0)
    vp = _VP([bad, good])
    assert _freezer(vp).freeze_due(10.0) == 1
    assert vp.idle == [good] and bad.env.destroyed and not good.env.destroyed


def test_environments_without_a_freezer_are_left_alone():
    plain = _Idle(object(), since=0.0)  # e.g. wasm: nothing of it runs between calls
    vp = _VP([plain])
    assert _freezer(vp).freeze_due(10.0) == 0 and plain.frozen and vp.idle == [plain]


def test_a_pass_freezes_a_bounded_number(monkeypatch):
    monkeypatch.setattr(freezer, "MAX_PER_PASS", 3)
    vp = _VP([_Idle(_Env(), since=0.0) for _ in range(5)])
    f = _freezer(vp)
    assert f.freeze_due(10.0) == 3 and f.freeze_due(10.0) == 2
