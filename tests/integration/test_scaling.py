"""Scaling over gRPC: provisioned concurrency, cold/warm reporting, scale to zero."""

from __future__ import annotations

import json
import threading

from runner.invocation.runner import zip_directory
from tests.conftest import guest

SLEEPY = zip_directory(guest("python", "hello"))


def _zip(source: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def test_invocations_within_provisioned_count_are_never_cold(client, server):
    runner, _ = server
    # One token per environment, drawn on its first invocation (sandboxes repeat pids, and
    # import-time state is shared by the environments a zygote forks).
    code = _zip("import time, os\nENV = []\ndef handler(e, c):\n    ENV or ENV.append(os.urandom(8).hex())\n"
                "    time.sleep(0.4)\n    return ENV[0]\n")
    client.deploy("prov", code, runtime="python", handler="app.handler", provisioned=3, concurrency=5)
    reports = []

    def call():
        resp = client.invoke("prov", b"{}")
        reports.append((resp.report.cold_start, json.loads(resp.payload)))

    for _ in range(3):  # three rounds of three concurrent invocations
        threads = [threading.Thread(target=call) for _ in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert len(reports) == 9
    assert [cold for cold, _ in reports] == [False] * 9
    assert len({pid for _, pid in reports}) == 3
    stats = runner.pool.stats()["versions"]
    assert sum(s["cold_starts"] for s in stats.values()) == 0
    assert sum(s["inits"] for s in stats.values()) == 3  # only the provisioning itself


def test_cold_then_warm_is_reported(client):
    client.deploy("cw", SLEEPY, runtime="python", handler="app.handler")
    first, second = client.invoke("cw", b"{}"), client.invoke("cw", b"{}")
    assert first.report.cold_start and first.report.HasField("init_duration_ms")
    assert not second.report.cold_start and not second.report.HasField("init_duration_ms")


def test_scale_to_zero_after_idle_ttl(server, client):
    runner, _ = server
    client.deploy("z", SLEEPY, runtime="python", handler="app.handler")
    client.invoke("z", b"{}")
    version = runner.get("z")
    assert runner.pool.idle_environments(version) == 1
    import time

    runner.pool.reap(now=time.monotonic() + runner.pool.idle_ttl_s + 1)
    assert runner.pool.idle_environments(version) == 0
    assert client.invoke("z", b"{}").report.cold_start


def test_scale_to_zero_takes_the_zygote_too_and_the_next_call_runs_init(server, client, monkeypatch):
    """Decision 086: once the idle TTL reaped a version's environments (and the pre-started
    spares are forgotten, as they are long before at the defaults), the zygote TTL closes
    its zygote; the next call is cold and runs the init again."""
    import time

    from runner.pool import prestart

    runner, _ = server
    code = _zip("import os\nTOKEN = os.urandom(8).hex()\ndef handler(e, c):\n    return TOKEN\n")
    client.deploy("zz", code, runtime="python", handler="app.handler")
    first = json.loads(client.invoke("zz", b"{}").payload)
    version = runner.get("zz")
    monkeypatch.setattr(prestart, "FORGET_S", 0.0)  # spares dropped at the refill's next tick
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        later = time.monotonic() + runner.pool.idle_ttl_s + 1
        runner.pool.reap(now=later)
        if runner.pool.reap_snapshots(now=later + runner.pool.zygote_ttl_s):
            break
        time.sleep(0.05)  # the environment's exit reaches the zygote's host side
    else:
        raise AssertionError("the zygote was not reaped")
    assert runner.pool.idle_environments(version) == 0
    resp = client.invoke("zz", b"{}")
    assert resp.report.cold_start and resp.report.HasField("init_duration_ms")
    assert json.loads(resp.payload) != first  # a new zygote: the init ran again


def test_deploy_builds_the_zygote_so_first_invoke_forks(client, server):
    runner, _ = server
    code = _zip("import os\nprint('module init ran')\nINIT_PID = os.getpid()\n"
                "def handler(e, c):\n    return {'init_pid': INIT_PID, 'pid': os.getpid()}\n")
    client.deploy("snap", code, runtime="python", handler="app.handler")
    version = runner.get("snap")
    backend = runner.pool.backend(version)
    if not hasattr(backend, "prewarm"):
        raise AssertionError("the Python backend should build snapshots at deploy")
    assert version.key in backend._zygotes  # built by the deploy, before any invocation
    from runner.service.proto import runner_api_pb2 as pb

    first = client.invoke("snap", b"{}", log_type=pb.LOG_TYPE_TAIL)
    body = json.loads(first.payload)
    assert first.report.cold_start and body["pid"] != body["init_pid"]  # forked, init not re-run
    assert "module init ran" in first.log_result.decode()  # the init's output is not lost
    second = client.invoke("snap", b"{}", log_type=pb.LOG_TYPE_TAIL)
    assert "module init ran" not in second.log_result.decode()


def test_python_cold_start_takes_a_prestarted_zygote_child(client, server):
    runner, _ = server
    code = _zip("import os\ndef handler(e, c):\n    return os.getpid()\n")
    client.deploy("spare", code, runtime="python", handler="app.handler")
    version = runner.get("spare")
    stats = runner.pool.prestart.stats()[version.key]
    assert stats["spares"] == 1  # launched by the deploy: forked, limits applied, parked
    resp = client.invoke("spare", b"{}")
    assert resp.report.cold_start and resp.function_error == ""
    assert runner.pool.prestart.stats()[version.key]["taken"] == 1



def _kill_and_wait(pid: int) -> None:
    """SIGKILL `pid` and wait until it is dead (a zombie or gone): its descriptors are closed."""
    import os
    import signal
    import time

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except (FileNotFoundError, ProcessLookupError):  # reaped between open and read
            return
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} still running 5 s after SIGKILL")


def test_environments_killed_while_idle_are_replaced_not_invoked(client, server):
    """An idle environment killed from outside (OOM killer, an operator, its zygote's death)
    is never handed an invocation that then fails: the invocation goes to the next live
    environment or a cold start, and the reaper drops the dead ones from the idle list."""
    import time

    runner, _ = server
    code = _zip("import time\ndef handler(e, c):\n    time.sleep(e.get('sleep_ms', 0) / 1000)\n    return 'ok'\n")
    client.deploy("victim", code, runtime="python", handler="app.handler", concurrency=5)
    threads = [threading.Thread(target=client.invoke, args=("victim", b'{"sleep_ms": 400}')) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    key = runner.get("victim").key
    # A start made for a call that took a released environment meanwhile (decision 081) may
    # still be running when the calls are back: it ends in the idle list.
    deadline = time.monotonic() + 10
    while runner.pool.stats()["versions"][key]["starting"] and time.monotonic() < deadline:
        time.sleep(0.02)
    idle = [item.env for item in runner.pool._pools[key].idle]
    assert len(idle) == 3
    for env in idle[1:]:  # the top of the LIFO idle list: the next invocation meets them first
        _kill_and_wait(env.pid)
    first = client.invoke("victim", b"{}")
    assert not first.function_error, first.payload
    assert not first.report.cold_start  # the live idle one took it, past the dead ones
    assert runner.pool.stats()["versions"][key]["idle"] == 1
    # Kill the last one while idle; the reaper (every second) drops it, and the next
    # invocation is a cold start that succeeds.
    _kill_and_wait(idle[0].pid)
    deadline = time.monotonic() + 10
    while runner.pool.stats()["versions"][key]["idle"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.pool.stats()["versions"][key]["idle"] == 0
    again = client.invoke("victim", b"{}")
    assert not again.function_error and again.report.cold_start
