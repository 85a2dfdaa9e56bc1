"""RUNNER_KSM=on for Node.js (environments/node/memory_sharing.py, decision 080): how node is
started so that idle environments' heaps can merge, and that a fixed V8 seed does not give
every environment the same Math.random sequence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest

from runner.confinement import ksm
from runner.environments.node import memory_sharing
from runner.environments.node.process_policy import find_node
from runner.environments.node.runtime import NodeRuntime
from runner.environments.process.backend import ProcessBackend
from tests.unit.environments.node._node_helpers import request, version

RANDOM_HANDLER = """
exports.handler = async () => ({
  r: [Math.random(), Math.random(), Math.random()],
  flag: process.env._RUNNER_RESEED_MATH_RANDOM === undefined ? null : 'visible',
  native: /native code/.test(Function.prototype.toString.call(Math.random)),
});
"""


@pytest.fixture
def ksm_on(monkeypatch):
    monkeypatch.setenv("RUNNER_KSM", "on")
    yield
    ksm.set_mergeable(False)  # NodeRuntime marked this test process


def _code(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.js").write_text(RANDOM_HANDLER)
    os.chmod(code, 0o755)
    return code


def test_with_ksm_node_starts_without_aslr_and_with_the_hosts_v8_seed(ksm_on, tmp_path):
    rt = NodeRuntime(find_node())
    cmd = rt.command(version(_code(tmp_path)))
    assert cmd[1] == "-R" and os.path.basename(cmd[0]) == "setarch"
    assert f"--random-seed={memory_sharing.HOST_V8_SEED}" in cmd
    assert rt.environment(version(tmp_path))[memory_sharing.RESEED_FLAG] == "1"
    assert ksm.is_marked()  # node inherits the mark from the process that launches it


def test_without_ksm_node_starts_as_before(monkeypatch, tmp_path):
    monkeypatch.delenv("RUNNER_KSM", raising=False)
    rt = NodeRuntime(find_node())
    cmd = rt.command(version(_code(tmp_path)))
    assert "-R" not in cmd and not any(a.startswith("--random-seed") for a in cmd)
    assert memory_sharing.RESEED_FLAG not in rt.environment(version(tmp_path))


def test_environments_of_one_seed_still_draw_different_math_random(ksm_on, tmp_path):
    (tmp_path / "envs").mkdir()
    backend = ProcessBackend(NodeRuntime(find_node()), str(tmp_path / "envs"))
    v = version(_code(tmp_path))
    envs, draws = [], []
    try:
        for _ in range(2):
            env = backend.create(v)
            envs.append(env)
            env.start()
            out = env.invoke(request({}))
            assert out.error is None, out.error
            doc = json.loads(out.payload)
            assert doc["flag"] is None  # the bootstrap's flag never reaches function code
            assert not doc["native"]  # replaced by the bootstrap's generator
            assert all(0.0 <= x < 1.0 for x in doc["r"])
            draws.append(doc["r"])
        assert draws[0] != draws[1]  # V8 alone, with one seed, would give both the same
        for env in envs:  # and each node process carries the mark (inherited through exec)
            pids = [env.pid, *(p.pid for p in psutil.Process(env.pid).children(recursive=True))]
            stats = [Path(f"/proc/{pid}/ksm_stat").read_text() for pid in pids]
            assert all("ksm_merge_any: yes" in s for s in stats)
    finally:
        for env in envs:
            env.destroy()
        backend.close()
