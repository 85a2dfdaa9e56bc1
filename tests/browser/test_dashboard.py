"""The dashboard in a real browser against a running server with real functions (issue 22):
each page loads, its numbers match the metrics, the invoke form and the live tail work, a
list of 100 functions with their sparklines renders in under a second, the workflow pages show
executions and their states coloured by outcome, and a function's page lists its schedules
and mappings."""

from __future__ import annotations

import json
import os
import threading
import time
from types import SimpleNamespace

import pytest

from runner import Runner
from runner.environments.fake import FakeBackend
from runner.service.http import HttpFront
from runner.service.push import Push
from runner.sources.manager import EventSources
from runner.storage.metric_series import MinuteSample, bucket_index
from runner.workflows.engine import WorkflowEngine
from tests.conftest import guest
from tests.metrics_helpers import sample


def _stop(front: HttpFront) -> None:
    # On a thread of its own: Playwright's sync API keeps an event loop running on this one,
    # and HttpFront.stop() finishes its own loop with run_until_complete().
    t = threading.Thread(target=front.stop)
    t.start()
    t.join()


@pytest.fixture
def served(tmp_path):
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    front = HttpFront(runner, "127.0.0.1", 0)
    front.start()
    yield runner, f"http://127.0.0.1:{front.port}"
    _stop(front)
    runner.close()


@pytest.fixture
def served_full(tmp_path):
    """A front as `runner serve` builds it: with a workflow engine, the push side (schedules,
    triggers, topics; the scheduler not started) and the event sources (no pollers)."""
    runner = Runner(str(tmp_path / "data"), idle_ttl_s=60)
    engine = WorkflowEngine(runner.data_dir, runner.invoke)
    push = Push(runner)
    sources = EventSources(runner)
    front = HttpFront(runner, "127.0.0.1", 0, push=push, workflows=engine, sources=sources)
    front.start()
    yield SimpleNamespace(runner=runner, engine=engine, push=push, sources=sources,
                          base=f"http://127.0.0.1:{front.port}")
    _stop(front)
    sources.close()
    push.close()
    engine.close()
    runner.close()


def _ready(page, route: str) -> None:
    page.wait_for_function(f"document.body.dataset.ready === {json.dumps(route)}", timeout=15000)
    assert page.js_errors == []


def test_functions_page_numbers_match_the_metrics(served, page, artifacts):
    runner, base = served
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler",
                  memory_mb=256, timeout_s=5)
    runner.deploy("raises", guest("python", "raises"), runtime="python", handler="app.handler")
    for i in range(4):
        runner.invoke("echo", json.dumps({"i": i}))
    for _ in range(2):
        runner.invoke("raises", b"{}")
    page.goto(base + "/ui/")
    _ready(page, "/")
    metrics = runner.metrics.exposition()
    for fn in ("echo", "raises"):
        row = page.locator(f'tr[data-function="{fn}"]')
        shown = int(row.locator('[data-field="invocations"]').inner_text())
        errors = int(row.locator('[data-field="errors"]').inner_text())
        assert shown == sample(metrics, "lambda_invocations_total", function=fn)
        assert errors == sample(metrics, "lambda_errors_total", function=fn)
        assert row.locator("canvas").count() == 1  # the sparkline was drawn
    echo = page.locator('tr[data-function="echo"]')
    assert echo.locator('[data-field="memory_mb"]').inner_text() == "256"
    assert echo.locator('[data-field="cold_start_share"]').inner_text() == "25.0%"
    page.screenshot(path=os.path.join(artifacts, "functions.png"), full_page=True)


def test_function_page_charts_invoke_form_and_live_tail(served, page, artifacts):
    runner, base = served
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    for i in range(3):
        runner.invoke("echo", json.dumps({"i": i}))
    page.goto(base + "/ui/#/fn/echo")
    _ready(page, "/fn/echo")
    assert page.locator("h1").inner_text() == "echo"
    assert page.locator(".chart canvas").count() == 4
    assert page.locator('[data-config="runtime"]').inner_text() == "python"
    assert "3 invocations, 0 errors" in page.locator(".window").inner_text()
    # This front has no push side or sources: the page says so rather than "none".
    assert page.locator('[data-none="schedules"]').inner_text() == "Not configured on this server."
    # The invoke form: the result and the invocation's log block.
    page.fill("#payload", '{"from": "the browser"}')
    page.click("#invoke")
    page.wait_for_function("document.getElementById('invoke-log').textContent.includes('REPORT')")
    assert json.loads(page.locator("#invoke-result").inner_text()) == {"from": "the browser"}
    # The live tail shows an invocation made elsewhere, without a reload.
    rid = runner.invoke("echo", b'{"tail": 1}').request_id
    page.wait_for_function(
        f"document.getElementById('log-tail').textContent.includes('REPORT RequestId: {rid}')",
        timeout=15000)
    page.screenshot(path=os.path.join(artifacts, "function.png"), full_page=True)
    # The 24 h window.
    page.click("text=24 h")
    _ready(page, "/fn/echo/86400")
    assert page.locator(".chart canvas").count() == 4


def test_usage_page(served, page, artifacts):
    runner, base = served
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler",
                  memory_mb=1024)
    for _ in range(3):
        runner.invoke("echo", b"{}")
    page.goto(base + "/ui/#/usage")
    _ready(page, "/usage")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    row = page.locator(f'tr[data-usage="{day}/echo"]')
    assert row.locator('[data-field="requests"]').inner_text() == "3"
    assert float(row.locator('[data-field="gb_seconds"]').inner_text()) > 0
    assert page.locator('[data-chart="Per day, all functions"] canvas').count() == 1
    page.screenshot(path=os.path.join(artifacts, "usage.png"), full_page=True)


def test_a_list_of_100_functions_renders_in_under_a_second(tmp_path, page, artifacts):
    # 100 functions with an hour of history each. The backend is the in-process fake: this
    # measures the page, not 100 Python zygotes.
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): return e\n")
    with Runner(str(tmp_path / "data"), backends={"python": FakeBackend()}) as runner:
        now = int(time.time())
        rows = []
        for i in range(100):
            name = f"fn-{i:03d}"
            runner.deploy(name, str(code), runtime="python", handler="app.handler")
            for m in range(60):
                s = MinuteSample(name, now - now % 60 - 60 * m, invocations=(i + m) % 7,
                                 duration_ms=2.0 * ((i + m) % 7))
                s.buckets[bucket_index(2.0)] = s.invocations
                rows.append(s)
        runner.series.add(rows)
        front = HttpFront(runner, "127.0.0.1", 0)
        front.start()
        try:
            url = f"http://127.0.0.1:{front.port}/ui/"
            page.goto(url)  # once to warm the browser's cache of the scripts
            _ready(page, "/")
            t0 = time.perf_counter()
            page.reload()
            _ready(page, "/")
            elapsed = time.perf_counter() - t0
            assert page.locator("#functions tbody tr").count() == 100
            assert page.locator("#functions canvas").count() == 100
            render_ms = float(page.evaluate("document.body.dataset.renderMs"))
            page.screenshot(path=os.path.join(artifacts, "functions-100.png"))
        finally:
            _stop(front)
    # The page's own measure (fetch + build + 100 charts) is the target; the wall clock of the
    # whole reload is reported with it and bounded loosely (a busy CI machine).
    assert render_ms < 1000, f"rendered in {render_ms:.0f} ms (reload {elapsed * 1000:.0f} ms)"
    assert elapsed < 5


# ------------------------------------------------------------------ workflows

FLOW = {"StartAt": "Prepare", "States": {
    "Prepare": {"Type": "Pass", "Result": {"card": "4242"}, "Next": "Charge"},
    "Charge": {"Type": "Task", "Resource": "CHARGE", "Next": "Done",
               "Catch": [{"ErrorEquals": ["Timeout"], "Next": "Refuse"}]},
    "Done": {"Type": "Succeed"},
    "Refuse": {"Type": "Fail", "Error": "Refused"}}}

FILLS = {"succeeded": "rgb(212, 237, 218)", "failed": "rgb(248, 215, 218)",
         "not_reached": "rgb(255, 255, 255)"}


def _machine(engine, name: str, function: str) -> None:
    engine.create_machine(name, json.dumps(FLOW).replace("CHARGE", function))


def _state(page, name: str) -> tuple[str, str]:
    """(data-outcome, the fill the browser computed) of a state's box in the graph."""
    box = page.locator(f'#graph g[data-state="{name}"]')
    return (box.get_attribute("data-outcome"),
            box.locator("rect").evaluate("r => getComputedStyle(r).fill"))


def test_workflow_pages_show_executions_and_states_coloured_by_outcome(served_full, page, artifacts):
    s = served_full
    s.runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    s.runner.deploy("raises", guest("python", "raises"), runtime="python", handler="app.handler")
    _machine(s.engine, "orders", "echo")
    _machine(s.engine, "refunds", "raises")
    for machine, name in (("orders", "o1"), ("orders", "o2"), ("refunds", "r1")):
        s.engine.wait(s.engine.start_execution(machine, name, "{}").arn, 60)

    page.goto(s.base + "/ui/#/workflows")
    _ready(page, "/workflows")
    orders, refunds = (page.locator(f'tr[data-machine="{m}"]') for m in ("orders", "refunds"))
    assert orders.locator('[data-field="SUCCEEDED"]').inner_text() == "2"
    assert orders.locator('[data-field="FAILED"]').inner_text() == "0"
    assert refunds.locator('[data-field="FAILED"]').inner_text() == "1"
    assert refunds.locator('[data-field="executions"]').inner_text() == "1"
    page.screenshot(path=os.path.join(artifacts, "workflows.png"), full_page=True)

    # The machine's page: its executions with their status, and the graph undecorated.
    page.click("text=refunds")
    _ready(page, "/wf/refunds")
    assert page.locator('tr[data-execution="r1"] [data-field="status"]').inner_text() == "FAILED"
    assert page.locator("#graph g[data-state]").count() == 4
    # Next edges run straight down, the Catch in a lane of its own.
    assert page.locator('#graph [data-edge="Charge->Refuse"]').get_attribute("class") == "edge edge-catch"
    assert page.locator('#graph [data-edge="start->Prepare"]').count() == 1

    # The failed execution: the Task failed, the Pass before it succeeded, the rest not reached.
    page.click("text=r1")
    _ready(page, "/wf/refunds/ex/r1")
    assert page.locator('#execution [data-field="status"]').inner_text() == "FAILED"
    assert page.locator('#execution [data-field="error"]').inner_text() == "PaymentDeclined"
    assert _state(page, "Prepare") == ("succeeded", FILLS["succeeded"])
    assert _state(page, "Charge") == ("failed", FILLS["failed"])
    assert _state(page, "Done") == ("not_reached", FILLS["not_reached"])
    assert _state(page, "Refuse")[0] == "not_reached"
    assert page.locator("#history tr", has_text="LambdaFunctionFailed").count() == 1
    page.screenshot(path=os.path.join(artifacts, "execution-failed.png"), full_page=True)

    # A succeeded execution: every state on its path succeeded.
    page.goto(s.base + "/ui/#/wf/orders/ex/o2")
    _ready(page, "/wf/orders/ex/o2")
    assert page.locator('#execution [data-field="status"]').inner_text() == "SUCCEEDED"
    for name in ("Prepare", "Charge", "Done"):
        assert _state(page, name) == ("succeeded", FILLS["succeeded"])
    assert json.loads(page.locator("#exec-output").inner_text()) == {"card": "4242"}
    page.screenshot(path=os.path.join(artifacts, "execution-succeeded.png"), full_page=True)


def test_the_workflows_page_without_an_engine_says_none_are_configured(served, page):
    _, base = served
    page.goto(base + "/ui/#/workflows")
    _ready(page, "/workflows")
    assert "No workflows configured" in page.locator("#no-workflows").inner_text()


def test_a_functions_page_shows_its_schedules_and_mappings(served_full, page, artifacts):
    s = served_full
    s.runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    s.push.scheduler.add("nightly", "echo", "cron(0 3 * * ? *)")
    # No broker on port 1: the mapping exists all the same (its poller, not started, would retry).
    m = s.sources.create(function="echo", source_type="redis-stream",
                         endpoint="redis://:s3cret@127.0.0.1:1/0", name="clicks")
    page.goto(s.base + "/ui/#/fn/echo")
    _ready(page, "/fn/echo")
    schedule = page.locator('[data-source="schedule/nightly"]').inner_text()
    assert "cron(0 3 * * ? *)" in schedule and "next " in schedule
    mapping = page.locator(f'[data-source="mapping/{m.uuid}"]').inner_text()
    assert "redis-stream" in mapping and "clicks" in mapping and "****" in mapping
    assert "s3cret" not in page.content()
    assert page.locator('[data-none="triggers"]').inner_text() == "None."
    page.locator("#event-sources").screenshot(path=os.path.join(artifacts, "function-sources.png"))
