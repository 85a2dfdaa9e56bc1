"""Runner (runner/invocation/runner.py) pieces that need no real environment: the context each invocation
carries (context.py), the log block (log_block.py), init failures, the response size."""

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
    ctx = runner.contexts.get(v, None, now)
    assert ctx is runner.contexts.get(v, None, now + 1)  # reused: environments send it once
    assert ctx == {
        "function_name": "fn", "function_version": "$LATEST",
        "invoked_function_arn": ctx["invoked_function_arn"], "memory_limit_in_mb": 256,
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": time.strftime("%Y/%m/%d", time.gmtime(now)) + "/[$LATEST]1",
    }
    assert ctx["invoked_function_arn"].endswith(":function:fn")
    qualified = runner.contexts.get(v, "prod", now)
    assert qualified is not ctx and qualified["invoked_function_arn"].endswith(":function:fn:prod")
    published = runner.contexts.get(version("3"), "3", now)
    assert published["function_version"] == "3" and published["log_stream_name"].endswith("/[3]1")


def test_context_changes_with_the_utc_day(runner):
    v = version()
    day1 = runner.contexts.get(v, None, 86400 * 20000 + 10)
    day2 = runner.contexts.get(v, None, 86400 * 20001 + 10)
    assert day1 is not day2
    assert day1["log_stream_name"] != day2["log_stream_name"]


def test_context_cache_is_bounded(runner, monkeypatch):
    from runner.invocation import context as context_module

    monkeypatch.setattr(context_module, "MAX_CACHED_CONTEXTS", 3)
    for rev in range(10):
        runner.contexts.get(version(revision=rev), None, 0.0)
    assert len(runner.contexts) <= 3


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

        def disk_full(name, text, reserved=False, owner=""):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(r.logs, "append", disk_full)
        with caplog.at_level(logging.ERROR, logger="runner.invocation.log_block"):
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


@pytest.fixture
def fake_runner(tmp_path):
    from runner.environments.fake import FakeBackend

    backend = FakeBackend(lambda e, c: e)
    r = Runner(str(tmp_path / "data"), backends={"python": backend})
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    r.deploy("fn", str(code), runtime="python", handler="app.handler")
    r.backend = backend
    yield r
    r.close()


def test_an_init_failure_is_reported_with_its_output_and_duration(fake_runner, monkeypatch):
    from runner.environments.fake import FakeEnvironment
    from runner.errors import FunctionInitError

    def failing_start(self):
        self.init_logs = b"loading config\n"
        self.init_duration_ms = 12.5
        raise FunctionInitError("bad config", "Runtime.Unknown")

    monkeypatch.setattr(FakeEnvironment, "start", failing_start)
    res = fake_runner.invoke("fn", b"{}")
    assert res.function_error == "Unhandled"
    assert res.error["errorType"] == "Runtime.Unknown" and res.error["errorMessage"] == "bad config"
    assert res.report.cold_start and res.report.init_duration_ms == 12.5
    text = res.log.decode()
    assert text.startswith("loading config\nSTART RequestId: ")
    assert "[ERROR] Runtime.Unknown: bad config" in text and "Init Duration: 12.50 ms" in text


def test_a_response_over_6_mb_is_refused_by_the_invocation_layer(fake_runner):
    from runner.errors import ResponseSizeTooLarge
    from runner.model import MAX_PAYLOAD_BYTES

    fake_runner.backend.handler = lambda e, c: "x" * MAX_PAYLOAD_BYTES
    res = fake_runner.invoke("fn", b"{}")
    size = MAX_PAYLOAD_BYTES + 2  # the JSON string's quotes
    assert res.error == ResponseSizeTooLarge.of(size, MAX_PAYLOAD_BYTES).to_document()
    assert res.error["errorType"] == ResponseSizeTooLarge.error_type


def test_a_log_block_left_to_the_caller_is_promised_then_written_once(fake_runner):
    import threading

    res, pending = fake_runner.invoke_log_later("fn", b'{"n": 1}')
    assert res.payload == b'{"n": 1}' and res.log == b""
    # A reader waits for the promised block instead of missing it.
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(fake_runner.read_logs("fn")))
    reader.start()
    pending.write()
    pending.write()  # kept once: the store counts one promise per block
    reader.join(5)
    assert any(line.startswith(f"END RequestId: {res.request_id}") for line in lines)
    assert sum(line.startswith("START RequestId:") for line in fake_runner.read_logs("fn")) == 1


def test_the_edges_reach_routes_and_dead_letters_through_the_runner(fake_runner):
    before = fake_runner.routes_version
    route = fake_runner.add_route("GET", "/items/{id}", "fn")
    assert fake_runner.routes_version > before
    assert fake_runner.list_routes() == [route]
    assert fake_runner.delete_route("GET", "/items/{id}") == route
    assert fake_runner.list_routes() == []
    assert fake_runner.dead_letters("fn") == []
    assert fake_runner.replay_dead_letters("fn") == []


# Lost updates and optimistic concurrency (issue 17, item 1; docs/decisions/046).

# Different fields, one per writer, each a value unlike the default.
PARTIAL_UPDATES = ({"memory_mb": 256}, {"timeout_s": 7.0}, {"concurrency": 5},
                   {"ephemeral_storage_mb": 1024}, {"max_retries": 1}, {"max_event_age_s": 120})


@pytest.fixture
def slow_runner(fake_runner, monkeypatch):
    # A deploy's preparation takes a while, as a real one does (a zygote, a wasm compile):
    # concurrent writers all start before the first has finished.
    monkeypatch.setattr(fake_runner.backend, "prepare", lambda version: time.sleep(0.2))
    return fake_runner


def _concurrently(fn, args):
    """fn(arg) on a thread per arg, started together; what each returned or raised."""
    import threading

    start = threading.Barrier(len(args))
    outcomes: list = [None] * len(args)

    def run(i):
        start.wait()
        try:
            outcomes[i] = fn(args[i])
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return outcomes


def test_concurrent_partial_updates_apply_or_conflict_never_vanish(slow_runner):
    from runner.errors import ResourceConflict

    outcomes = _concurrently(lambda change: slow_runner.deploy("fn", **change), PARTIAL_UPDATES)
    final = slow_runner.get("fn").config
    applied = 0
    for change, outcome in zip(PARTIAL_UPDATES, outcomes):
        if isinstance(outcome, ResourceConflict):
            assert "update is in progress" in outcome.message
            continue
        assert not isinstance(outcome, Exception), outcome
        ((field, value),) = change.items()
        assert getattr(final, field) == value, f"the update of {field} returned but was lost"
        applied += 1
    assert applied >= 1


def test_concurrent_partial_updates_retried_on_conflict_all_land(slow_runner):
    from runner.errors import ResourceConflict

    def update_until_applied(change):
        deadline = time.monotonic() + 60  # six 0.2 s deploys in turn, on a busy machine
        while True:
            try:
                return slow_runner.deploy("fn", **change)
            except ResourceConflict:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    outcomes = _concurrently(update_until_applied, PARTIAL_UPDATES)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    final = slow_runner.get("fn").config
    for change in PARTIAL_UPDATES:
        ((field, value),) = change.items()
        assert getattr(final, field) == value, field


def test_an_update_in_progress_refuses_others_of_the_same_function_at_once(
        fake_runner, monkeypatch, tmp_path):
    import threading

    from runner.errors import ResourceConflict

    fake_runner.deploy("other", str(tmp_path / "code"), runtime="python", handler="app.handler")
    in_prewarm, release = threading.Event(), threading.Event()
    prewarm = fake_runner.pool.prewarm

    def held_prewarm(version):  # the first update of "fn" stays in progress until released
        if version.name == "fn" and not in_prewarm.is_set():
            in_prewarm.set()
            assert release.wait(30)
        prewarm(version)

    monkeypatch.setattr(fake_runner.pool, "prewarm", held_prewarm)
    first = threading.Thread(target=lambda: fake_runner.deploy("fn", memory_mb=512))
    first.start()
    try:
        assert in_prewarm.wait(30)
        with pytest.raises(ResourceConflict, match="^function 'fn': an update is in progress"):
            fake_runner.deploy("fn", timeout_s=9)
        with pytest.raises(ResourceConflict):
            fake_runner.publish("fn")
        assert fake_runner.deploy("other", memory_mb=256).config.memory_mb == 256  # per function
    finally:
        release.set()
        first.join(30)
    assert fake_runner.get("fn").config.memory_mb == 512
    assert fake_runner.deploy("fn", timeout_s=9).config.timeout_s == 9  # the claim was released


def test_revision_id_guards_updates_and_publishes(fake_runner):
    from runner import errors

    v1 = fake_runner.get("fn")
    stale = fake_runner.revision_id(v1)
    v2 = fake_runner.deploy("fn", memory_mb=256, revision_id=stale)
    current = fake_runner.revision_id(v2)
    assert current != stale
    with pytest.raises(errors.PreconditionFailed) as info:
        fake_runner.deploy("fn", memory_mb=512, revision_id=stale)
    assert info.value.error_type == "PreconditionFailedException"
    with pytest.raises(errors.PreconditionFailed):
        fake_runner.publish("fn", revision_id=stale)
    assert fake_runner.get("fn") == v2 and fake_runner.versions("fn") == [v2]
    published = fake_runner.publish("fn", revision_id=current)
    assert published.version == "1"
    after = fake_runner.revision_id(fake_runner.get("fn"))
    assert after != current  # publishing is a change of the function too
    with pytest.raises(errors.PreconditionFailed):
        fake_runner.deploy("fn", memory_mb=512, revision_id=current)
    assert fake_runner.deploy("fn", memory_mb=512, revision_id=after).config.memory_mb == 512
