"""The contract of the event queue, dead letters and routes, on SQLite and PostgreSQL alike
(the `state` fixture runs each test on both; tests/state_fixtures.py). The registry's
contract is tests/unit/storage/test_functions.py, on both too."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.errors import InvalidParameter, ResourceNotFound
from runner.storage.events import DeadLetter, Event, Outcome


def ev(eid: str, function: str = "f", next_at: float = 1.0) -> Event:
    return Event(eid, function, "", b'{"n": 1}', 1.0, 0, next_at, "uid-1")


def test_enqueue_due_complete(state):
    q = state.events()
    for i in range(3):
        q.enqueue(ev(f"e{i}", next_at=1.0 + i))
    q.enqueue(ev("later", next_at=1e12))
    assert q.pending() == 4 and q.pending("f") == 4 and q.pending("g") == 0
    due = q.due(10.0, [], 10)
    assert [e.id for e in due] == ["e0", "e1", "e2"]
    assert due[0].payload == b'{"n": 1}' and due[0].function_uid == "uid-1"
    assert [e.id for e in q.due(10.0, ["e0", "e1", "e2"], 10)] == []
    q.complete("e0", Outcome())
    assert q.pending() == 3
    assert q.next_due_at(["e1", "e2"]) == 1e12


def test_the_same_id_is_queued_once(state):
    q = state.events()
    q.enqueue(ev("a"))
    q.enqueue(ev("a"))
    assert q.pending() == 1


def test_reschedule_and_interrupted_attempts(state):
    q = state.events()
    for eid in ("done", "retried", "cut"):
        q.enqueue(ev(eid))
    assert len(q.due(10.0, [], 10)) == 3
    for eid in ("done", "retried", "cut"):
        q.started(eid, 100.0)
    q.complete("done", Outcome())
    q.reschedule("retried", 200.0, 1, {"errorType": "E"})
    q.close()
    reopened = state.events("node-b")  # as after a crash: a new node, only what was committed
    if state.url:  # the old node must be dead for its attempt to count as cut short
        reopened.db.execute("UPDATE cluster_nodes SET left_at = now()")
    cut = reopened.interrupted()
    assert [(e.id, at) for e, at in cut] == [("cut", 100.0)]
    assert reopened.interrupted() == []
    assert reopened.pending() == 2
    assert [e.id for e in reopened.due(150.0, [], 10)] == ["cut"]
    assert [e.attempts for e in reopened.due(250.0, ["cut"], 10)] == [1]


def test_complete_forwards_or_dead_letters_atomically(state):
    q = state.events()
    q.enqueue(ev("a"))
    q.enqueue(ev("b"))
    q.complete("a", Outcome(forward=ev("a-dest", function="dest")))
    record = {"requestContext": {"condition": "RetriesExhausted"}}
    q.complete("b", Outcome(dead_letter=DeadLetter("b", "f", "", b"{}", record, 5.0)))
    assert q.pending("f") == 0 and q.pending("dest") == 1
    [letter] = q.dead_letters("f")
    assert letter.id == "b" and letter.record == record and letter.payload == b"{}"
    with pytest.raises(ResourceNotFound, match="^id: no dead letter 'nope'"):
        q.replay("f", ["nope"], 9.0)
    assert q.replay("f", None, 9.0) == ["b"]
    assert q.dead_letters("f") == [] and q.pending("f") == 1
    assert q.discard_function("dest") == 1 and q.pending("dest") == 0


def test_routes_add_list_delete_and_version(state):
    r = state.routes()
    v0 = r.version
    r.add("get", "/items/{id}", "f")
    r.add("POST", "/items", "g", "1")
    r.add("GET", "/items/{id}", "h")  # repoints
    assert r.version > v0
    assert [(x.method, x.path, x.function, x.qualifier) for x in r.list()] == [
        ("POST", "/items", "g", "1"), ("GET", "/items/{id}", "h", "")]
    with pytest.raises(InvalidParameter, match="^method:"):
        r.add("BREW", "/x", "f")
    with pytest.raises(ResourceNotFound, match="route not found"):
        r.delete("GET", "/nope")
    assert r.delete("get", "/items/{id}").function == "h"
    assert r.delete_function("g") == 1 and r.list() == []


# What only a shared store has: several nodes on one database.


@pytest.fixture
def shared(pg_state):
    return pg_state


def _live(store, node_id: str) -> None:
    store.db.execute("INSERT INTO cluster_nodes (id, address, host, capacity) VALUES (%s, '', 'h', 1) "
                     "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), left_at = NULL", (node_id,))


def test_two_live_nodes_never_get_the_same_event(shared):
    a, b = shared.events("a"), shared.events("b")
    _live(a, "a")
    _live(a, "b")
    for i in range(20):
        a.enqueue(ev(f"e{i:02}"))
    got_a = {e.id for e in a.due(10.0, [], 7)}
    got_b = {e.id for e in b.due(10.0, [], 100)}
    assert len(got_a) == 7 and len(got_b) == 13 and not got_a & got_b
    assert a.due(10.0, got_a, 100) == [] and b.due(10.0, got_b, 100) == []
    assert {e.id for e in a.due(10.0, [], 100)} == got_a  # its own leases stay claimable by it


def test_a_dead_nodes_events_are_taken_over(shared):
    a, b = shared.events("a"), shared.events("b")
    _live(a, "a")
    _live(a, "b")
    for i in range(5):
        a.enqueue(ev(f"e{i}"))
    assert len(a.due(10.0, [], 10)) == 5 and b.due(10.0, [], 10) == []
    # a's heartbeat stops: past the expiry it is dead, as the database's clock says.
    a.db.execute("UPDATE cluster_nodes SET heartbeat_at = now() - interval '11 seconds' WHERE id = 'a'")
    assert len(b.due(10.0, [], 10)) == 5
    assert a.due(10.0, [], 10) == []  # a (back, but not yet live again) cannot take them back


def test_an_update_on_one_node_is_seen_by_another_within_2_s(shared, tmp_path):
    from runner.model import FunctionConfig
    from tests.unit.storage.test_functions import code

    one = shared.registry(str(tmp_path / "node1"))
    two = shared.registry(str(tmp_path / "node2"))
    cfg = FunctionConfig("python", "app.handler")
    one.deploy("f", cfg, code())
    v = two.resolve("f")  # code extracted from the shared store into node 2's cache
    assert v.code_dir.startswith(str(tmp_path / "node2")) and (tmp_path / "node2" / "code" /
                                                                v.code_sha256 / "app.py").exists()
    one.deploy("f", cfg.with_changes(memory_mb=512), None)
    deadline = time.monotonic() + 2.0
    while two.resolve("f").config.memory_mb != 512:
        assert time.monotonic() < deadline, "node 2 still serves the old configuration"
        time.sleep(0.05)
    one.delete("f")
    time.sleep(1.1)
    with pytest.raises(ResourceNotFound):
        two.resolve("f")


def test_singleton_leases(shared):
    from runner.storage.postgres.nodes import NodeStore

    nodes = NodeStore(shared.url)
    try:
        assert nodes.acquire("scheduler", "a", 5.0)
        assert not nodes.acquire("scheduler", "b", 5.0)
        assert nodes.acquire("scheduler", "a", 5.0)  # renewal
        assert nodes.holder("scheduler") == "a"
        nodes.db.execute("UPDATE cluster_leases SET expires_at = now() - interval '1 second'")
        assert nodes.holder("scheduler") is None
        assert nodes.acquire("scheduler", "b", 5.0) and nodes.holder("scheduler") == "b"
        nodes.release("scheduler", "b")
        assert nodes.acquire("scheduler", "a", 5.0)
    finally:
        nodes.close()


def test_an_enqueue_on_one_node_wakes_the_others(shared):
    import threading

    woken = threading.Event()
    a, b = shared.events("a"), shared.events("b")
    b.listen(woken.set)
    deadline = time.monotonic() + 5
    while not woken.is_set() and time.monotonic() < deadline:
        a.enqueue(ev(f"e{time.monotonic()}"))  # until the listener's LISTEN is in place
        woken.wait(0.2)
    assert woken.is_set()


def test_a_store_survives_a_database_restart(tmp_path):
    """Stores keep working after PostgreSQL restarts: the call that meets the broken
    connection fails (nothing half-written), the next ones reconnect."""
    import psycopg

    from runner.model import FunctionConfig
    from runner.storage.postgres.functions import PostgresRegistry
    from tests.real_servers import postgres_server
    from tests.state_fixtures import wait_ready
    from tests.unit.storage.test_functions import code

    server = postgres_server(logical=False)
    server.start()
    try:
        wait_ready(server.url)
        reg = PostgresRegistry(server.url, str(tmp_path))
        cfg = FunctionConfig("python", "app.handler")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: reg.deploy(f"f{i}", cfg, code()), range(4)))  # 4 pooled
        server.kill()  # a crash of the database: every pooled connection is now broken
        server.start()
        wait_ready(server.url)
        failures = 0
        for i in range(3):
            try:
                reg.deploy("f0", cfg.with_changes(memory_mb=256 + i), None)
            except psycopg.OperationalError:
                failures += 1
        assert failures <= 1
        time.sleep(1.1)
        assert reg.resolve("f0").config.memory_mb == 258
        reg.close()
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def test_a_delivery_key_is_queued_once_across_nodes(state):
    a = state.events("a")
    assert a.enqueue(ev("x1"), key="schedule:s:2026-01-01T00:00") is True
    b = state.events("b") if state.url else a
    assert b.enqueue(ev("x2"), key="schedule:s:2026-01-01T00:00") is False
    assert a.enqueue(Event("x3", "f", "", b"{}", 1.0, 0, 1.0, "", "Root=1-abc")) is True
    assert a.pending() == 2
    [e3] = [e for e in a.due(10.0, [], 10) if e.id == "x3"]
    assert e3.trace_id == "Root=1-abc"
