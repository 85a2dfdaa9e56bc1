"""RUNNER_KSM=on: the zygote marks itself mergeable and its forked environments inherit it
(confinement/ksm.py, decision 072). /proc/PID/ksm_stat's `ksm_merge_any` is the kernel's own
record of PR_SET_MEMORY_MERGE for that address space."""

import json

from tests.unit.environments.python.test_zygote import backend, call, started, version  # noqa: F401 (fixture)

SRC = "def handler(e, c):\n    return {'ok': True}\n"




def merge_any(pid):
    with open(f"/proc/{pid}/ksm_stat") as f:
        fields = dict(line.split(None, 1) for line in f.read().splitlines())
    return fields["ksm_merge_any:"].strip()


def test_forked_environments_are_mergeable_when_ksm_is_on(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_KSM", "on")
    a, b = started(backend, version(tmp_path, SRC)), started(backend, version(tmp_path, SRC, 2))
    try:
        assert json.loads(call(a).payload) == {"ok": True}
        assert merge_any(a.pid) == merge_any(b.pid) == "yes"
    finally:
        a.destroy(), b.destroy()


def test_environments_are_not_mergeable_by_default(backend, tmp_path, monkeypatch):
    monkeypatch.delenv("RUNNER_KSM", raising=False)
    env = started(backend, version(tmp_path, SRC))
    try:
        assert merge_any(env.pid) == "no"
    finally:
        env.destroy()
