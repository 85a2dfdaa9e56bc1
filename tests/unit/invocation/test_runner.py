"""Runner (runner/invocation/runner.py) pieces that need no real environment: the context each
invocation carries (context.py), the edges' routes and dead letters, concurrent updates."""

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
