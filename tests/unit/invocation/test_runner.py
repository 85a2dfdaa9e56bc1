"""Runner (runner/invocation/runner.py) pieces that need no sandbox: the context each invocation carries."""

import time

import pytest

from runner import Runner
from runner.model import FunctionConfig, FunctionVersion


@pytest.fixture
def runner(tmp_path):
    r = Runner(str(tmp_path / "data"), backends={})
    yield r
    r.close()


def version(label="$LATEST", revision=1, memory_mb=256):
    return FunctionVersion("fn", label, revision, FunctionConfig("python", "app.handler", memory_mb=memory_mb),
                           "0" * 64, "/nonexistent")


def test_context_is_reused_per_version_and_qualifier(runner):
    now = time.time()
    v = version()
    ctx = runner._context(v, None, now)
    assert ctx is runner._context(v, None, now + 1)  # reused: environments send it once
    assert ctx == {
        "function_name": "fn", "function_version": "$LATEST",
        "invoked_function_arn": ctx["invoked_function_arn"], "memory_limit_in_mb": 256,
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": time.strftime("%Y/%m/%d", time.gmtime(now)) + "/[$LATEST]1",
    }
    assert ctx["invoked_function_arn"].endswith(":function:fn")
    qualified = runner._context(v, "prod", now)
    assert qualified is not ctx and qualified["invoked_function_arn"].endswith(":function:fn:prod")
    published = runner._context(version("3"), "3", now)
    assert published["function_version"] == "3" and published["log_stream_name"].endswith("/[3]1")


def test_context_changes_with_the_utc_day(runner):
    v = version()
    day1 = runner._context(v, None, 86400 * 20000 + 10)
    day2 = runner._context(v, None, 86400 * 20001 + 10)
    assert day1 is not day2
    assert day1["log_stream_name"] != day2["log_stream_name"]


def test_context_cache_is_bounded(runner, monkeypatch):
    from runner.invocation import runner as runner_module

    monkeypatch.setattr(runner_module, "MAX_CACHED_CONTEXTS", 3)
    for rev in range(10):
        runner._context(version(revision=rev), None, 0.0)
    assert len(runner._contexts) <= 3


def test_a_log_write_that_fails_does_not_lose_the_result(tmp_path, monkeypatch, caplog):
    # The handler has run: a full disk may cost the log block, never the result (a client
    # retrying after an error would run the handler twice).
    import errno
    import logging

    from runner.environments.fake import FakeBackend

    r = Runner(str(tmp_path / "data"), backends={"python": FakeBackend(lambda e, c: {"got": e})})
    try:
        code = tmp_path / "code"
        code.mkdir()
        (code / "app.py").write_text("def handler(e, c): pass\n")
        r.deploy("fn", str(code), runtime="python", handler="app.handler")

        def disk_full(name, text, reserved=False):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(r.logs, "append", disk_full)
        with caplog.at_level(logging.ERROR, logger="runner.invocation.runner"):
            res = r.invoke("fn", b'{"n": 1}')
        assert res.function_error is None and res.payload == b'{"got": {"n": 1}}'
        assert b"REPORT RequestId" in res.log  # the caller still gets the block it asked for
        assert "not written: [Errno 28]" in caplog.text
    finally:
        r.close()


def test_a_cold_starts_init_is_not_taken_from_the_guests_remaining_time(tmp_path, monkeypatch):
    # As on Lambda: the deadline the guest sees (getRemainingTimeInMillis) starts after init.
    from runner.environments.fake import FakeBackend, FakeEnvironment

    seen = []
    real_invoke = FakeEnvironment.invoke
    monkeypatch.setattr(FakeEnvironment, "invoke", lambda self, req: (seen.append(req), real_invoke(self, req))[1])
    r = Runner(str(tmp_path / "data"), backends={"python": FakeBackend(init_delay_s=1.0)})
    try:
        code = tmp_path / "code"
        code.mkdir()
        (code / "app.py").write_text("def handler(e, c): pass\n")
        r.deploy("fn", str(code), runtime="python", handler="app.handler", timeout_s=3)
        res = r.invoke("fn", b"{}")
        assert res.report.cold_start
        left_s = seen[0].deadline_ms / 1000 - time.time()
        assert left_s > 2.5, f"the guest saw {left_s:.2f} s of a 3 s timeout after a 1 s init"
    finally:
        r.close()
