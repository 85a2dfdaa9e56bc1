"""The pre-start pool (runner/pool/prestart.py): spares, demand sizing, retirement, pool wiring."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from runner.environments.backends import default_backends
from runner.environments.base import EnvState
from runner.pool import prestart as ps
from runner.pool.pool import PoolManager
from tests.unit.environments.node._node_helpers import GUESTS, guest, request, version


def wait_for(cond, timeout=10.0):
    """Poll `cond` until true (bounded): the refill thread works asynchronously."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:  # reaped between the two checks
        return True


@pytest.fixture
def backends(tmp_path):
    return default_backends(str(tmp_path / "envs"))


@pytest.fixture
def pre(backends):
    p = ps.PreStartPool(backends)
    yield p
    p.close()


def test_first_cold_start_misses_then_a_spare_is_launched(pre):
    v = guest("hello")
    assert pre.take(v) is None
    assert wait_for(lambda: pre.stats()[v.key]["spares"] == 1)
    env = pre.take(v)
    # Pre-initialised (decision 069): the handler is loaded and the spare frozen until taken.
    assert env is not None and env.state is EnvState.READY and env.launched_alive()
    assert env._frozen
    try:
        env.start()  # nothing left to do: the process is up and its init has run
        assert env.state is EnvState.READY
        out = env.invoke(request({"name": "spare"}))
        assert json.loads(out.payload) == {"message": "hello spare"}
    finally:
        env.destroy()
    stats = pre.stats()[v.key]
    assert (stats["taken"], stats["missed"]) == (1, 1)


def test_spares_start_with_a_scrubbed_environment(pre, monkeypatch):
    monkeypatch.setenv("NODE_OPTIONS", "--require /nonexistent.js")
    v = guest("echo")
    pre.prewarm(v)
    assert wait_for(lambda: pre.stats()[v.key]["spares"] == 1)
    env = pre.take(v)
    try:
        env.start()
        body = json.loads(env.invoke(request({})).payload)
        assert body["env"]["nodeOptions"] is None
    finally:
        env.destroy()


def test_a_spare_killed_from_outside_is_never_handed_out(pre):
    v = guest("hello")
    pre.prewarm(v)
    assert wait_for(lambda: pre.stats()[v.key]["spares"] == 1)
    victim = pre._entries[v.key].spares[0]
    os.kill(victim.pid, signal.SIGKILL)
    assert wait_for(lambda: not victim.launched_alive())
    env = pre.take(v)
    assert env is not victim
    assert victim.state is EnvState.DEAD  # destroyed (reaped), not leaked
    if env is not None:
        env.destroy()


def test_forget_and_close_destroy_spares(backends):
    pre = ps.PreStartPool(backends)
    a, b = guest("hello"), guest("echo")
    pre.prewarm(a)
    pre.prewarm(b)
    assert wait_for(lambda: all(pre.stats().get(v.key, {}).get("spares") == 1 for v in (a, b)))
    pa = pre._entries[a.key].spares[0].pid
    pb = pre._entries[b.key].spares[0].pid
    pre.forget(a)
    assert wait_for(lambda: gone(pa)) and a.key not in pre.stats()
    pre.close()
    assert wait_for(lambda: gone(pb))  # SIGKILL sent at once; the reap is in the background
    assert pre.take(b) is None  # closed: nothing more is launched or handed out


def test_runtimes_outside_the_pools_list_are_not_prestarted(backends, tmp_path):
    from runner.model import FunctionConfig, FunctionVersion

    pre = ps.PreStartPool(backends, runtimes=("nodejs",))
    try:
        v = FunctionVersion("w", "$LATEST", 1, FunctionConfig(runtime="wasm", handler="_start"),
                            "0" * 64, str(tmp_path))
        assert not pre.handles(v)
        assert pre.take(v) is None and pre.stats() == {}
    finally:
        pre.close()


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


class FakeEnv:
    def __init__(self):
        self.state = EnvState.NEW
        self.launched = False

    def launch(self):
        self.launched = True

    def start(self):  # a Node.js spare is pre-initialised (decision 069)
        self.launch()
        self.state = EnvState.READY

    def launched_alive(self):
        return self.launched and self.state is not EnvState.DEAD

    def destroy(self):
        self.state = EnvState.DEAD


class FakeBackend:
    runtime = "nodejs"

    def __init__(self, spare_init=True):
        # Backend.spare_init: spares run start() ahead of demand, as Node's do.
        self.spare_init = spare_init
        self.created = []

    def create(self, version):
        env = FakeEnv()
        self.created.append(env)
        return env


def test_spare_count_follows_demand():
    backend = FakeBackend()
    # A tick period of an hour: the test drives the EWMA itself, deterministically.
    pre = ps.PreStartPool({"nodejs": backend}, tick_s=3600)
    try:
        v = guest("hello")
        for _ in range(40):  # a burst: 40 cold starts in one second
            pre.take(v)
        with pre._lock:
            entry = pre._entries[v.key]
            for _ in range(8):  # two seconds at 40/s
                entry.pending = 10
                pre._tick_locked(0.25)
            high = pre._target_locked(entry, time.monotonic())
        assert high == ps.MAX_PER_VERSION  # capped
        assert wait_for(lambda: pre.stats()[v.key]["spares"] == ps.MAX_PER_VERSION)
        with pre._lock:
            for _ in range(int(60 / 0.25)):  # a quiet minute: demand decays
                pre._tick_locked(0.25)
            low = pre._target_locked(entry, time.monotonic())
            entry.last_cold -= ps.FORGET_S + 1  # and then nobody cold-started for FORGET_S
            none = pre._target_locked(entry, time.monotonic())
            pre._wake.notify()
        assert low == 1  # a recently used version keeps one spare
        assert none == 0
        assert wait_for(lambda: pre.stats()[v.key]["spares"] == 0)
        assert sum(e.state is EnvState.DEAD for e in backend.created) >= ps.MAX_PER_VERSION
    finally:
        pre.close()


def test_host_wide_cap_on_spares():
    backend = FakeBackend()
    pre = ps.PreStartPool({"nodejs": backend}, max_total=3, tick_s=3600)
    try:
        versions = [version(GUESTS / "hello", revision=i, name=f"f{i}") for i in range(5)]
        for v in versions:
            pre.prewarm(v)
        assert wait_for(lambda: sum(s["spares"] for s in pre.stats().values()) == 3)
        time.sleep(0.1)
        assert sum(s["spares"] for s in pre.stats().values()) == 3
    finally:
        pre.close()


def test_pool_manager_cold_start_uses_a_spare(backends):
    pool = PoolManager(backends)
    try:
        v = guest("hello")
        lease = pool.acquire(v)  # the first cold start: no spare yet
        assert lease.cold
        pool.release(lease, reusable=False)  # e.g. a timeout: the environment is replaced
        assert wait_for(lambda: pool.prestart.stats()[v.key]["spares"] == 1)
        spare_pid = pool.prestart._entries[v.key].spares[0].pid
        lease = pool.acquire(v)
        assert lease.cold and lease.env.pid == spare_pid
        out = lease.env.invoke(request({}))
        assert json.loads(out.payload) == {"message": "hello world"}
        pool.release(lease, reusable=True)
        pool.retire(v)
        assert v.key not in pool.prestart.stats()
    finally:
        pool.close()


def test_prewarm_with_wait_has_a_spare_ready_on_return(pre):
    v = guest("hello")
    pre.prewarm(v, wait=True)
    assert pre.stats()[v.key]["spares"] == 1  # no polling: launched in this thread
    env = pre.take(v)
    try:
        assert env is not None and env.launched_alive()
        env.start()
        assert json.loads(env.invoke(request({})).payload) == {"message": "hello world"}
    finally:
        env.destroy()
    pre.prewarm(v, wait=True)
    pre.prewarm(v, wait=True)  # one spare already there: nothing more launched here
    assert pre.stats()[v.key]["spares"] + pre.stats()[v.key]["launching"] == 1


class _SlowLaunches:
    """A nodejs backend whose launches block until released, counting how many overlap."""

    runtime = "nodejs"
    spare_init = True

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def create(self, version):
        backend = self

        class Env:
            def launch(self):
                with backend.lock:
                    backend.now += 1
                    backend.peak = max(backend.peak, backend.now)
                backend.release.wait(10)
                with backend.lock:
                    backend.now -= 1

            def start(self):  # a pre-initialised spare's init (decision 069): instant here
                pass

            def launched_alive(self):
                return True

            def destroy(self):
                pass

        return Env()


def test_spares_are_launched_several_at_a_time():
    # Issue 17, item 7: one launch at a time, a loaded host (a Node launch of ~1 s) refilled
    # about one spare per second while timeouts used up several; cold starts then launched on
    # the invocation's path. The verdict here is the overlap itself, not a timing.
    backend = _SlowLaunches()
    pre = ps.PreStartPool({"nodejs": backend}, max_per_version=4)
    try:
        v = guest("hello")
        for _ in range(40):  # a burst of cold starts: demand for the maximum of spares
            pre.take(v)
        assert wait_for(lambda: backend.peak >= 2, timeout=10.0), backend.peak
        backend.release.set()
        assert wait_for(lambda: pre.stats()[v.key]["spares"] >= 2)
    finally:
        backend.release.set()
        pre.close()


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
