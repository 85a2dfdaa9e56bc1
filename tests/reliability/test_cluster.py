"""A cluster of `runner serve` nodes on one PostgreSQL (issue 23; docs/cluster.md).

* Routing: 3 nodes, many functions, calls sent to every node round-robin: each function runs
  on its home node only (the others forward), so environments stay warm: after a warm-up,
  >= 90% of invocations are warm, and none is throttled while capacity remains.
* kill -9 of the node driving Standard workflow executions in a Wait: another node adopts
  them when their leases lapse and finishes each, running every task once.
* kill -9 of a node while Event invocations stream in: the node is seen dead within 10 s (+
  one heartbeat), the singleton lease it held is taken over, and every accepted event runs --
  those it had leased included. The short form (make test) runs one kill cycle on a small
  load; `--long` runs 5 cycles and the issue's 10,000 invocations over 50 functions.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest

from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.async_helpers import RECORDER, WAIT_S, records, wait_for
from tests.conftest import guest
from tests.integration.conftest import Client
from tests.real_servers import redis  # noqa: F401
from tests.reliability.conftest import ROOT
from tests.state_fixtures import fresh_database

HEARTBEAT_S, EXPIRY_S = 2.0, 10.0


class Node:
    """`python -m runner serve --state URL` as a subprocess: one node of the cluster."""

    def __init__(self, url: str, data_dir: str, log_path: str, capacity: int = 16) -> None:
        self.data_dir = data_dir
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "serve", "--state", url, "--workers", "1",
             "--data-dir", data_dir, "--port", "0", "--http-port", "0", "--retry-delay", "0.1",
             "--grace", "1", "--node-capacity", str(capacity)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log)
        self.id = self.address = self.http_port = None
        deadline = time.monotonic() + WAIT_S
        while self.address is None or self.http_port is None:
            line = self.proc.stdout.readline().decode()
            if not line or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"node did not start; see {log_path}")
            if m := re.match(r"^node (\S+) peers at", line):
                self.id = m.group(1)
            elif m := re.match(r"^listening on (\S+:\d+)", line):
                self.address = m.group(1)
            elif m := re.match(r"^http listening on \S+:(\d+)", line):
                self.http_port = int(m.group(1))

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def cluster(pg_server, tmp_path):
    url = fresh_database(pg_server)
    nodes: list[Node] = []

    def start(i: int) -> Node:
        node = Node(url, str(tmp_path / f"node-{i}"), str(tmp_path / f"node-{i}.log"))
        nodes.append(node)
        return node

    yield url, start
    for node in nodes:  # all at once: each finishes its in-flight work in parallel
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        node.stop()


def test_each_function_runs_on_its_home_node_and_stays_warm(cluster, long_run):
    url, start = cluster
    functions, calls = (50, 10_000) if long_run else (10, 400)
    nodes = [start(i) for i in range(3)]
    clients = [Client(n.address) for n in nodes]
    try:
        code = zip_directory(guest("python", "echo"))
        names = [f"fn{i:02}" for i in range(functions)]
        for name in names:
            clients[0].deploy(name, code, runtime="python", handler="app.handler")
        # Warm-up: every function once through every node (its first call is a cold start).
        for name in names:
            for c in clients:
                c.invoke(name, b"{}")
        cold = throttled = 0
        lock = threading.Lock()

        def call(i: int) -> None:
            nonlocal cold, throttled
            try:
                r = clients[i % 3].invoke(names[(i // 3) % functions], b'{"i": %d}' % i)
            except grpc.RpcError as exc:
                with lock:
                    throttled += exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                raise
            assert not r.function_error, r.payload
            with lock:
                cold += r.report.cold_start

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(call, range(calls)))
        # A function's logs are on its home node; any node serves them (it forwards GetLogs).
        for name in names[:3]:
            for c in clients:
                lines = [x.line for x in c.invoker.GetLogs(pb.GetLogsRequest(name=name))]
                assert sum(line.startswith("START RequestId:") for line in lines) >= 3
        for c in clients:
            with pytest.raises(grpc.RpcError) as info:
                list(c.invoker.GetLogs(pb.GetLogsRequest(name="no-such-function")))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        for c in clients:
            c.close()
    warm_rate = 1 - cold / calls
    assert throttled == 0
    assert warm_rate >= 0.9, f"warm-hit rate {warm_rate:.1%} (cold starts {cold} of {calls})"
    # Routing, seen from the logs: whichever node the client called, a function's invocations
    # ran on one node, its home. A node that looks dead for a moment (a heartbeat late on a
    # very busy machine) sends some calls elsewhere, so the bound is on the total: >= 90% of
    # all invocations ran on their function's main node. And the homes spread over the nodes.
    main_runs = all_runs = 0
    homes = set()
    for name in names:
        per_node = []
        for n in nodes:
            path = os.path.join(n.data_dir, "logs", f"{name}.log")
            text = ""
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text = f.read()
            per_node.append(len(re.findall(r"START RequestId:", text)))
        main_runs += max(per_node)
        all_runs += sum(per_node)
        homes.add(per_node.index(max(per_node)))
    assert all_runs >= calls
    assert main_runs / all_runs >= 0.9, f"only {main_runs} of {all_runs} ran on their home node"
    print(f"warm-hit {warm_rate:.1%} ({cold} cold of {calls}); on the home node "
          f"{main_runs / all_runs:.1%}; homes on {len(homes)} nodes")
    assert len(homes) >= 2


def _live(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT id FROM cluster_nodes WHERE left_at IS NULL AND "
            "heartbeat_at > now() - interval '10 seconds'")}


def _lease_holder(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT holder FROM cluster_leases WHERE name = 'cluster-janitor' "
                           "AND expires_at >= now()").fetchone()
    return row[0] if row else None


@pytest.mark.usefixtures("guests_see_host_files")
def test_kill9_of_a_node_loses_no_accepted_event_and_its_leases_move(cluster, tmp_path, long_run):
    url, start = cluster
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    nodes = [start(i) for i in range(3)]
    Client(nodes[0].address).deploy("rec", zip_directory(RECORDER), runtime="python",
                                    handler="app.handler", environment={"RECORD_DIR": str(rec_dir)})
    accepted: list[str] = []
    cycles = 5 if long_run else 1
    for cycle in range(cycles):
        wait_for(lambda: _lease_holder(url), "a janitor lease holder")
        holder = _lease_holder(url)
        victim = next(i for i, n in enumerate(nodes) if n.id == holder)
        # Events into every node; the victim is killed while it is running some of them.
        clients = [Client(n.address) for n in nodes]
        try:
            for i in range(60):
                r = clients[i % 3].invoke("rec", json.dumps({"n": i, "sleep": 0.3}).encode(),
                                          invocation_type=pb.EVENT)
                assert r.status_code == 202
                accepted.append(r.request_id)
        finally:
            for c in clients:
                c.close()
        killed_id = nodes[victim].id
        nodes[victim].kill9()
        killed_at = time.monotonic()
        with psycopg.connect(url) as conn:  # what it held when it died: others must run them
            held = conn.execute("SELECT COUNT(*) FROM events WHERE leased_by = %s",
                                (killed_id,)).fetchone()[0]
        assert held > 0, "the victim held no events when killed: nothing to take over"
        wait_for(lambda: killed_id not in _live(url), "the killed node to be seen dead",
                 timeout=EXPIRY_S + 2 * HEARTBEAT_S + 5)
        detected_s = time.monotonic() - killed_at
        # Dead 10 s after its last heartbeat, which was at most 2 s before the kill.
        assert detected_s <= EXPIRY_S + 1, f"detected after {detected_s:.1f} s"
        wait_for(lambda: _lease_holder(url) not in (None, killed_id), "the lease to move",
                 timeout=EXPIRY_S + 3 * HEARTBEAT_S)
        assert _lease_holder(url) in {n.id for i, n in enumerate(nodes) if i != victim}

        def all_ran() -> bool:
            return not set(accepted) - {rid for rid, _ in records(str(rec_dir), "rec")}

        wait_for(all_ran, f"all {len(accepted)} accepted events to run (cycle {cycle})")
        nodes[victim].stop()
        nodes[victim] = start(10 + cycle)  # a new member takes the dead one's place
    seen = {rid for rid, _ in records(str(rec_dir), "rec")}
    assert not set(accepted) - seen
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0


@pytest.mark.usefixtures("guests_see_host_files")
def test_schedules_fire_once_across_nodes_and_survive_a_killed_node(cluster, tmp_path):
    """Every node ticks the shared schedules; each slot fires once (delivery keys), and the
    schedules created through a node that is then killed -9 still fire, from the others."""
    from datetime import datetime, timezone

    url, start = cluster
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    nodes = [start(i) for i in range(3)]
    Client(nodes[0].address).deploy("rec", zip_directory(RECORDER), runtime="python",
                                    handler="app.handler", environment={"RECORD_DIR": str(rec_dir)})
    first = int(time.time()) + 4
    names = [f"s{i}" for i in range(6)]
    env = dict(os.environ, RUNNER_ADDRESS=nodes[0].address)
    for i, name in enumerate(names):
        when = datetime.fromtimestamp(first + i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        done = subprocess.run(
            [sys.executable, "-m", "runner", "schedule", "add", name, "--function", "rec",
             "--expression", f"at({when})", "--input", json.dumps({"s": name})],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    nodes[0].kill9()  # the node they were created through

    def fired() -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, event in records(str(rec_dir), "rec"):
            s = (event.get("detail") or {}).get("s") if isinstance(event, dict) else None
            if s:
                counts[s] = counts.get(s, 0) + 1
        return counts

    wait_for(lambda: set(fired()) == set(names), "every schedule to fire")
    time.sleep(3)  # any second firing of a slot would have happened by now
    assert fired() == {name: 1 for name in names}


def test_a_mapping_is_polled_by_one_node_and_taken_over_after_kill9(cluster, redis, tmp_path,  # noqa: F811
                                                                     guests_see_host_files):
    """One poller per mapping in the cluster (a lease per mapping); kill -9 of the node
    polling it: another takes the lease and resumes (Redis consumer group: the dead one's
    pending batch is read again), and no record is lost."""
    import redis as redis_client

    from tests.integration.event_sources.helpers import BATCH_RECORDER, processed

    url, start = cluster
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    nodes = [start(i) for i in range(3)]
    # Concurrency left at the default, so not reserved: a reserved function's batches would run
    # at its home node (decision 084), and the log check below tells the poller by where the
    # batches ran.
    Client(nodes[0].address).deploy("rs", zip_directory(BATCH_RECORDER), runtime="python",
                                    handler="app.handler",
                                    environment={"RECORD_DIR": str(rec_dir)})
    env = dict(os.environ, RUNNER_ADDRESS=nodes[0].address)
    done = subprocess.run(
        [sys.executable, "-m", "runner", "source", "add", "--address", nodes[0].address,
         "--function", "rs", "--type", "redis-stream", "--endpoint", redis.url, "--name", "events",
         "--batch-size", "5", "--starting-position", "TRIM_HORIZON"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    uuid = done.stdout.strip()
    lease = f"mapping:{uuid}"

    def holder() -> str | None:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT holder FROM cluster_leases WHERE name = %s AND "
                               "expires_at >= now()", (lease,)).fetchone()
        return row[0] if row else None

    first = wait_for(holder, "a node to take the mapping's lease")
    r = redis_client.Redis.from_url(redis.url)
    try:
        for i in range(100):
            r.xadd("events", {"data": json.dumps({"n": i}), "partitionKey": f"k{i % 4}"})
        wait_for(lambda: len(processed(str(rec_dir), "rs")) >= 10, "some records processed")
        victim = next(n for n in nodes if n.id == first)
        # One poller in the cluster: the batches ran on the lease holder only (the poller
        # invokes on its own node, so its function log is there).
        ran_on = [n for n in nodes if os.path.exists(os.path.join(n.data_dir, "logs", "rs.log"))]
        assert ran_on == [victim]
        victim.kill9()
        for i in range(100, 200):
            r.xadd("events", {"data": json.dumps({"n": i}), "partitionKey": f"k{i % 4}"})
    finally:
        r.close()
    wait_for(lambda: holder() not in (None, first), "another node to take the lease",
             timeout=EXPIRY_S + 3 * HEARTBEAT_S + 5)
    seen = lambda: {int(n) for _, _, n in processed(str(rec_dir), "rs")}  # noqa: E731
    wait_for(lambda: seen() >= set(range(200)), "every record processed after the takeover")


@pytest.mark.usefixtures("guests_see_host_files")
def test_workflows_of_a_killed_node_finish_on_another(cluster, tmp_path):
    """Executions started through one node are seen through every node (one shared store) and
    driven by the node that started them (it holds their leases); kill -9 of it during their
    Wait: the other node adopts them once the leases lapse and finishes each from its cursor,
    every task running exactly once (First ran before the kill, Last after it)."""
    from tests.reliability.test_kill9_workflows import sfn_client

    url, start = cluster
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    nodes = [start(i) for i in range(2)]
    Client(nodes[0].address).deploy("rec", zip_directory(RECORDER), runtime="python",
                                    handler="app.handler", environment={"RECORD_DIR": str(rec_dir)})
    task = {"Type": "Task", "Resource": "rec", "ResultPath": None,
            "Parameters": {"n.$": "$.n", "step.$": "$$.State.Name"}}
    definition = {"StartAt": "First", "States": {
        "First": {**task, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 5, "Next": "Last"},
        "Last": {**task, "End": True}}}
    on_a, on_b = sfn_client(nodes[0].http_port), sfn_client(nodes[1].http_port)
    machine = on_a.create_state_machine(name="slow", definition=json.dumps(definition),
                                        roleArn="r")["stateMachineArn"]
    arns = [on_a.start_execution(stateMachineArn=machine, name=f"e{n}",
                                 input=json.dumps({"n": n}))["executionArn"] for n in range(3)]

    def waiting(arn: str) -> bool:  # read through the other node: the store is shared
        events = on_b.get_execution_history(executionArn=arn)["events"]
        return any(e["type"] == "WaitStateEntered" for e in events)

    wait_for(lambda: all(waiting(a) for a in arns), "every execution to enter its Wait")
    with psycopg.connect(url) as conn:
        holders = {r[0] for r in conn.execute(
            "SELECT holder FROM cluster_leases WHERE name LIKE 'workflow:%'")}
    assert holders == {nodes[0].id}  # the node that started them drives them
    nodes[0].kill9()

    def finished() -> bool:
        return all(on_b.describe_execution(executionArn=a)["status"] != "RUNNING" for a in arns)

    wait_for(finished, "the other node to finish the killed node's executions",
             timeout=WAIT_S + EXPIRY_S)
    for n, arn in enumerate(arns):
        d = on_b.describe_execution(executionArn=arn)
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"]) == {"n": n}
        types = [e["type"] for e in on_b.get_execution_history(executionArn=arn)["events"]]
        assert types.count("TaskStateEntered") == 2 and types[-1] == "ExecutionSucceeded"
    ran: dict[tuple, int] = {}
    for _, event in records(str(rec_dir), "rec"):
        key = (event["n"], event["step"])
        ran[key] = ran.get(key, 0) + 1
    assert ran == {(n, step): 1 for n in range(3) for step in ("First", "Last")}
    with open(tmp_path / "node-1.log") as f:
        assert "whose lease had lapsed" in f.read()  # adopted by node 1's lease keeper
