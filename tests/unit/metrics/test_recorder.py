"""The metrics of the invocation path against known traffic (runner/metrics/, issue 22): after
N invocations with k function errors and t throttles the counters say N, k and t, and every
family moves as Lambda's CloudWatch metric of the same meaning would."""

from __future__ import annotations

import threading
import time

import pytest

from runner import Runner
from runner.environments.fake import FakeBackend
from runner.errors import FunctionOutOfMemory, FunctionTimeout, TooManyRequests
from tests.metrics_helpers import sample


def _handler(event, ctx):
    kind = (event or {}).get("kind")
    if kind == "fail":
        raise ValueError("no")
    if kind == "timeout":
        raise FunctionTimeout.after(1)
    if kind == "oom":
        raise FunctionOutOfMemory.at(128)
    if kind == "block":
        event_gate.wait(10)
    return event


event_gate = threading.Event()


@pytest.fixture
def fake(tmp_path):
    event_gate.clear()
    backend = FakeBackend(_handler)
    r = Runner(str(tmp_path / "data"), backends={"python": backend}, async_retry_base_s=0.01)
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    r.deploy("fn", str(code), runtime="python", handler="app.handler", memory_mb=512,
             concurrency=1)
    r.code_dir = str(code)
    yield r
    event_gate.set()
    r.close()


def test_counters_are_exact_for_known_traffic(fake):
    n_ok, k_fail = 7, 3
    for _ in range(n_ok):
        fake.invoke("fn", b'{"kind": "ok"}')
    for _ in range(k_fail):
        assert fake.invoke("fn", b'{"kind": "fail"}').function_error == "Unhandled"
    fake.invoke("fn", b'{"kind": "timeout"}')
    fake.invoke("fn", b'{"kind": "oom"}')
    # t throttles: one invocation holds the function's only slot (concurrency 1).
    holder = threading.Thread(target=fake.invoke, args=("fn", b'{"kind": "block"}'))
    holder.start()
    deadline = time.monotonic() + 5
    while sample(fake.metrics.exposition(), "lambda_concurrent_executions", function="fn") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t = 4
    for _ in range(t):
        with pytest.raises(TooManyRequests):
            fake.invoke("fn", b"{}")
    event_gate.set()
    holder.join()
    text = fake.metrics.exposition()
    total = n_ok + k_fail + 2 + 1  # + timeout, oom, and the one that held the slot
    assert sample(text, "lambda_invocations_total", function="fn", outcome="success") == n_ok + 1
    assert sample(text, "lambda_invocations_total", function="fn", outcome="function_error") == k_fail
    assert sample(text, "lambda_invocations_total", function="fn", outcome="timeout") == 1
    assert sample(text, "lambda_invocations_total", function="fn", outcome="out_of_memory") == 1
    assert sample(text, "lambda_invocations_total", function="fn", outcome="throttled") == t
    assert sample(text, "lambda_throttles_total", function="fn") == t
    assert sample(text, "lambda_errors_total", function="fn") == k_fail + 2
    assert sample(text, "lambda_duration_seconds_count", function="fn") == total
    assert sample(text, "lambda_concurrent_executions", function="fn") == 0
    # The timeout and the OOM destroyed their environments: three cold starts in all.
    assert sample(text, "lambda_cold_starts_total", function="fn") == 3
    assert sample(text, "lambda_init_duration_seconds_count", function="fn") == 3
    assert sample(text, "runner_pool_misses_total") == 3
    assert sample(text, "runner_pool_hits_total") == total - 3
    # Billed duration rounds each invocation up to 1 ms at least: 512 MB = 0.5 GB.
    assert sample(text, "lambda_billed_gb_seconds_total", function="fn") >= total * 0.001 * 0.5
    # The minute series agree once written.
    fake._series_writer.flush()
    now = int(time.time())
    [minute] = fake.series.totals(now - 120, now + 60).values()
    assert (minute.invocations, minute.errors, minute.throttles, minute.cold_starts) == (
        total, k_fail + 2, t, 3)
    assert minute.concurrency == 1


def test_unknown_functions_get_no_series(fake):
    with pytest.raises(Exception):
        fake.invoke("nope", b"{}")
    assert 'function="nope"' not in fake.metrics.exposition().decode()


def test_host_gauges_and_queue_depth(fake):
    fake.invoke("fn", b"{}")
    text = fake.metrics.exposition()
    assert sample(text, "lambda_environments", function="fn", state="idle") == 1
    assert sample(text, "runner_environments", runtime="python", state="idle") == 1
    assert sample(text, "runner_async_queue_depth") == 0


def test_async_events_received_retried_and_dead_lettered(fake):
    fake.deploy("fn", runtime="python", handler="app.handler", on_failure="dlq", max_retries=1)
    fake.invoke_async("fn", b'{"kind": "fail"}')
    deadline = time.monotonic() + 10
    while not fake.dead_letters("fn"):
        assert time.monotonic() < deadline, "the event never reached the dead-letter store"
        time.sleep(0.02)
    text = fake.metrics.exposition()
    assert sample(text, "lambda_async_events_received_total", function="fn") == 1
    assert sample(text, "lambda_async_retries_total", function="fn") == 1
    assert sample(text, "lambda_dead_letters_total", function="fn") == 1
    assert sample(text, "lambda_async_event_age_seconds_count", function="fn") == 2
    assert sample(text, "lambda_async_events_dropped_total", function="fn") == 0


def test_an_event_with_nowhere_to_go_is_dropped(fake):
    fake.deploy("fn", runtime="python", handler="app.handler", max_retries=0)
    fake.invoke_async("fn", b'{"kind": "fail"}')
    deadline = time.monotonic() + 10
    while sample(fake.metrics.exposition(), "lambda_async_events_dropped_total",
                 function="fn", reason="retries") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_series_survive_a_restart_and_go_with_the_function(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    data = str(tmp_path / "data")
    with Runner(data, backends={"python": FakeBackend(_handler)}) as r:
        r.deploy("fn", str(code), runtime="python", handler="app.handler")
        for _ in range(5):
            r.invoke("fn", b"{}")
    now = int(time.time())
    with Runner(data, backends={"python": FakeBackend(_handler)}) as r:
        assert r.series.totals(now - 120, now + 60)["fn"].invocations == 5
        assert sample(r.metrics.exposition(), "lambda_invocations_total", function="fn") == 0
        r.delete("fn")
        assert r.series.totals(now - 120, now + 60) == {}


def test_a_deleted_function_leaves_no_series(fake):
    fake.invoke("fn", b"{}")
    fake.delete("fn")
    assert 'function="fn"' not in fake.metrics.exposition().decode()


def test_metrics_off_counts_nothing(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    with Runner(str(tmp_path / "d"), backends={"python": FakeBackend(_handler)}, metrics=False) as r:
        r.deploy("fn", str(code), runtime="python", handler="app.handler")
        r.invoke("fn", b"{}")
        assert sample(r.metrics.exposition(), "lambda_invocations_total") == 0


def test_provisioned_environments_are_charged_their_memory_for_the_time(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    with Runner(str(tmp_path / "d"), backends={"python": FakeBackend(_handler)}) as r:
        r.deploy("prov", str(code), runtime="python", handler="app.handler", memory_mb=2048,
                 provisioned=2, concurrency=4)
        text = r.metrics.exposition()
        assert sample(text, "lambda_provisioned_concurrency", function="prov") == 2
        before = sample(text, "lambda_provisioned_gb_seconds_total", function="prov")
        r._series_writer._last_tick -= 10.0  # as if 10 s passed since the last flush
        r._series_writer.flush()
        charged = sample(r.metrics.exposition(), "lambda_provisioned_gb_seconds_total",
                         function="prov") - before
        assert charged == pytest.approx(2 * 2.0 * 10.0, rel=0.05)  # 2 envs x 2 GB x 10 s
        now = int(time.time())
        assert r.series.totals(now - 120, now + 60)["prov"].provisioned_gb_seconds >= 40.0 * 0.95


def test_source_workflow_and_edge_families():
    from runner.metrics import Metrics

    m = Metrics()
    m.source_batch("orders-queue", "fn", records=10, ok=True, iterator_age_s=3.5)
    m.source_batch("orders-queue", "fn", records=4, ok=False)
    for status in ("started", "started", "succeeded", "failed"):
        m.workflow_execution("checkout", status)
    m.rpc("Invoke", "OK", 0.002)
    m.http("invoke_api", 200, 0.003)
    text = m.exposition()
    assert sample(text, "runner_source_batches_total", mapping="orders-queue", outcome="success") == 1
    assert sample(text, "runner_source_batches_total", mapping="orders-queue", outcome="error") == 1
    assert sample(text, "runner_source_records_total", mapping="orders-queue") == 14
    assert sample(text, "runner_source_iterator_age_seconds", mapping="orders-queue") == 3.5
    assert sample(text, "runner_workflow_executions_total", workflow="checkout", status="started") == 2
    assert sample(text, "runner_rpc_duration_seconds_count", method="Invoke") == 1
    assert sample(text, "runner_http_request_duration_seconds_sum", kind="invoke_api") == pytest.approx(0.003)


def test_failed_dead_letter_and_destination_writes_are_counted(fake, monkeypatch):
    real = fake.events.complete

    def failing(event_id, outcome):
        if outcome.dead_letter is not None or outcome.forward is not None:
            raise OSError(28, "No space left on device")
        return real(event_id, outcome)

    monkeypatch.setattr(fake.events, "complete", failing)
    fake.deploy("fn", runtime="python", handler="app.handler", on_failure="dlq", max_retries=0)
    fake.invoke_async("fn", b'{"kind": "fail"}')
    deadline = time.monotonic() + 10
    while sample(fake.metrics.exposition(), "lambda_dead_letter_errors_total", function="fn") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    fake.deploy("fn", runtime="python", handler="app.handler", on_failure="other")
    fake.invoke_async("fn", b'{"kind": "fail"}')
    while sample(fake.metrics.exposition(), "lambda_destination_delivery_failures_total",
                 function="fn") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
