"""The init boost (launch.run_init, issue 20): the init phase runs with at least
INIT_BOOST_CPUS, and the function's own share is back before anything else runs, whatever
the reply (ready, error, timeout, a broken channel)."""

from __future__ import annotations

import os

import pytest

from runner.confinement.limits import Enforcement, LimitSpec
from runner.environments.process import launch
from runner.model import FunctionConfig, FunctionVersion


class Group:
    class layout:  # noqa: N801 (stands for cgroups.Layout)
        version = 2

    def __init__(self):
        self.quotas = []

    def set_cpu(self, fraction):
        self.quotas.append(round(fraction, 4))


class Channel:
    timed_out = False
    bad_frame = None

    def __init__(self, group, reply=None, fail=False):
        self.group, self.reply, self.fail = group, reply, fail
        self.quota_during_init = None

    def send_now(self, msg):
        assert msg == {"t": "init"}
        self.quota_during_init = self.group.quotas[-1]

    def wait(self, deadline, logs=None):
        if self.fail:
            raise OSError("channel broke")
        return self.reply


def version(memory_mb=128):
    return FunctionVersion("f", "$LATEST", 1, FunctionConfig("python", "app.handler",
                                                             memory_mb=memory_mb), "d", "/x")


def enforcement(memory_mb=128):
    group = Group()
    spec = LimitSpec(memory_bytes=memory_mb << 20, cpu_fraction=memory_mb / 1769)
    return Enforcement(1, spec, group), group


@pytest.mark.parametrize("reply", [{"t": "ready"}, {"t": "init_error", "error": {}}, None])
def test_init_runs_boosted_then_the_share_is_back(reply):
    enf, group = enforcement(128)
    ch = Channel(group, reply)
    launch.run_init(ch, version(128), enf)
    assert ch.quota_during_init == min(launch.INIT_BOOST_CPUS, float(os.cpu_count() or 1))
    assert group.quotas[-1] == round(128 / 1769, 4)


def test_share_is_restored_when_the_channel_breaks():
    enf, group = enforcement(128)
    with pytest.raises(OSError):
        launch.run_init(Channel(group, fail=True), version(128), enf)
    assert group.quotas[-1] == round(128 / 1769, 4)


def test_a_larger_share_is_never_lowered():
    enf, group = enforcement(3538)  # two vCPUs' worth
    ch = Channel(group, {"t": "ready"})
    launch.run_init(ch, version(3538), enf)
    assert ch.quota_during_init == round(3538 / 1769, 4) == group.quotas[-1]
