"""Spares that run init ahead of demand (runner/pool/prestart.py, Backend.spare_init): Node.js
(decision 069, its warm-up: decision 074), wasm (decision 082), the budget on a spare's init
and what a failed init costs."""

from __future__ import annotations

import json
import os
import time

import pytest

from runner.environments.base import EnvState
from runner.pool import prestart as ps
from tests.unit.environments.node._node_helpers import guest, request, version
from tests.unit.pool.test_prestart import FakeBackend, wait_for


def test_a_wasm_spare_is_started_whole_and_its_start_is_then_a_no_op(tmp_path):
    # Decision 082: the spare ran start() (its /tmp, store, instance and init) ahead of demand.
    from bench import workloads
    from runner import Runner

    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    try:
        code, handler = workloads.fixture_code("wasm")
        runner.deploy("w", code, runtime="wasm", handler=handler)
        v = runner.get("w")
        pre = runner.pool.prestart
        assert pre.handles(v)
        assert wait_for(lambda: pre.stats().get(v.key, {}).get("spares", 0) >= 1)
        env = pre.take(v)
        assert env is not None and env.state is EnvState.READY
        env.start()  # what the pool calls on every environment it takes: nothing to do
        assert env.state is EnvState.READY
        env.destroy()
    finally:
        runner.close()


def test_a_node_spare_whose_init_fails_is_not_kept_and_the_cold_start_reports_it(pre, tmp_path):
    code = tmp_path / "bad-init"
    code.mkdir()
    (code / "index.js").write_text("throw new Error('broken at init');\n"
                                   "exports.handler = async () => 1;\n")
    os.chmod(code, 0o755)
    os.chmod(code / "index.js", 0o644)
    v = version(code, name="bad-init")
    pre.prewarm(v, wait=True)  # launched (and its init run) in this thread, now
    stats = pre.stats()[v.key]
    assert (stats["spares"], stats["launching"]) == (0, 0)  # the failed init destroyed it
    assert pre.take(v) is None
    from runner.errors import FunctionInitError
    env = pre.backends["nodejs"].create(v)
    try:
        with pytest.raises(FunctionInitError) as info:
            env.start()  # the cold start runs init itself and reports the function's error
        assert "broken at init" in info.value.message
    finally:
        env.destroy()


def test_a_node_spare_whose_init_overruns_the_budget_waits_before_init(pre, tmp_path, monkeypatch):
    # A heavy init is not run twice (in the spare, then in a cold start that found none): past
    # the budget the spare is replaced by a launched-only one, and the version stays that way.
    monkeypatch.setattr(ps, "PREINIT_BUDGET_S", 0.2)
    code = tmp_path / "slow-init"
    code.mkdir()
    (code / "index.js").write_text("const end = Date.now() + 1000; while (Date.now() < end) {}\n"
                                   "exports.handler = async () => 'slow';\n")
    os.chmod(code, 0o755)
    os.chmod(code / "index.js", 0o644)
    v = version(code, name="slow-init", timeout_s=10)
    pre.prewarm(v, wait=True)
    env = pre.take(v)
    assert env is not None and env.state is EnvState.NEW  # launched, init not run
    try:
        env.start()  # the cold start runs the init, under the function's own limit
        assert json.loads(env.invoke(request({})).payload) == "slow"
    finally:
        env.destroy()
    assert pre._entries[v.key].preinit is False


def test_a_node_spares_warm_up_never_calls_the_handler_nor_reaches_its_log(pre, tmp_path):
    # Decision 074: the spare's warm-up runs the bootstrap's invoke path on a built-in no-op
    # handler. The user's handler counts its calls in memory and in /tmp (a side effect a
    # warm-up event must not cause), and logs each; the first real call must be call 1.
    code = tmp_path / "counting"
    code.mkdir()
    (code / "index.js").write_text(
        "const fs = require('fs');\n"
        "let calls = 0;\n"
        "console.log('init done');\n"
        "exports.handler = async (event) => {\n"
        "  calls += 1;\n"
        "  const file = '/tmp/calls';\n"
        "  const before = fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : 0;\n"
        "  fs.writeFileSync(file, String(before + 1));\n"
        "  console.log('handler call', calls);\n"
        "  return { calls, fileCalls: before + 1, name: event.name };\n"
        "};\n")
    os.chmod(code, 0o755)
    os.chmod(code / "index.js", 0o644)
    v = version(code, name="counting")
    pre.prewarm(v, wait=True)
    env = pre.take(v)
    assert env is not None and env.state is EnvState.READY
    assert env.init_warmup  # the spare was asked to warm up (RUNNER_NODE_WARMUP is on)
    try:
        out = env.invoke(request({"name": "first"}))
        assert out.error is None
        assert json.loads(out.payload) == {"calls": 1, "fileCalls": 1, "name": "first"}
        assert out.logs.count(b"handler call") == 1
        for logs in (env.init_logs, out.logs):
            assert b"warm" not in logs.lower()
            assert b"Invoke Error" not in logs
        assert b"init done" in env.init_logs
    finally:
        env.destroy()


def test_node_warmup_off_leaves_the_spares_init_frame_plain(pre, monkeypatch):
    monkeypatch.setenv("RUNNER_NODE_WARMUP", "off")
    v = guest("hello")
    pre.prewarm(v, wait=True)
    env = pre.take(v)
    try:
        assert env is not None and env.state is EnvState.READY and not env.init_warmup
        assert json.loads(env.invoke(request({"name": "x"})).payload) == {"message": "hello x"}
    finally:
        env.destroy()


def test_each_backend_says_whether_its_spares_run_init(backends, monkeypatch):
    # Backend.spare_init (environments/base.py), not a runtime name in the pool: Node.js spares
    # run init (decision 069) unless RUNNER_NODE_PREINIT=off, wasm ones always (decision 082),
    # Python ones never (a zygote child inherited it).
    assert backends["wasm"].spare_init is True
    assert backends["python"].spare_init is False
    assert backends["nodejs"].spare_init is True
    monkeypatch.setenv("RUNNER_NODE_PREINIT", "off")
    assert backends["nodejs"].spare_init is False  # read at each launch, as the knob was


def test_a_backend_without_spare_init_has_its_spares_launched_only():
    for flag, state in ((False, EnvState.NEW), (True, EnvState.READY)):
        backend = FakeBackend(spare_init=flag)
        pre = ps.PreStartPool({"nodejs": backend}, tick_s=3600)
        try:
            v = guest("hello")
            pre.prewarm(v, wait=True)
            env = pre.take(v)
            assert env is not None and env.launched and env.state is state, flag
        finally:
            pre.close()


def test_node_preinit_off_keeps_node_spares_launched_only(pre, monkeypatch):
    monkeypatch.setenv("RUNNER_NODE_PREINIT", "off")
    v = guest("hello")
    pre.prewarm(v, wait=True)
    env = pre.take(v)
    try:
        assert env is not None and env.state is EnvState.NEW and env.launched_alive()
        env.start()  # the cold start loads the handler
        assert json.loads(env.invoke(request({})).payload) == {"message": "hello world"}
    finally:
        env.destroy()


INIT_NEVER_ENDS = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64) (i64.const 0))
  (func (export "init") (loop $spin (br $spin))))
"""


def test_a_wasm_spares_init_is_bounded_by_the_budget_too(tmp_path, monkeypatch):
    # Without the budget a wasm spare's init ran until the function's init limit (10 s at
    # least), holding a launcher thread and a CPU lane; past it the spare is launched only,
    # as a Node spare is, and the cold start runs init under the function's own limit.
    from tests.unit.environments.wasm.wasm_support import deploy, new_backend

    monkeypatch.setattr(ps, "PREINIT_BUDGET_S", 0.2)
    backend = new_backend(tmp_path, snapshots=False)  # init runs in start(), not at prepare
    pre = ps.PreStartPool({"wasm": backend}, tick_s=3600)
    try:
        v = deploy(tmp_path, INIT_NEVER_ENDS, "handle", timeout_s=3)
        t0 = time.monotonic()
        pre.prewarm(v, wait=True)
        assert time.monotonic() - t0 < 2.5  # the budget, not the 10 s init limit
        env = pre.take(v)
        assert env is not None and env.state is EnvState.NEW and env.init_budget_s is None
        assert pre._entries[v.key].preinit is False
        env.destroy()
    finally:
        pre.close()
        backend.close()
