"""`runner serve`'s cluster options (docs/cluster.md): `--state`, `--workers`, the node's
capacity and peer address, the token rule; and joining the cluster once the server is built.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import SimpleNamespace

from runner import settings

DEFAULT_NODE_CAPACITY = 16  # synchronous invocations a node takes before its calls spill over


def add_cluster_arguments(s) -> None:
    s.add_argument("--state", default=os.environ.get("RUNNER_STATE") or None, metavar="URL",
                   help="share functions, routes and the async queue with other nodes through "
                        "PostgreSQL (postgresql://...); default: SQLite in the data directory")
    s.add_argument("--code-store", default=os.environ.get("RUNNER_CODE_STORE") or None,
                   metavar="s3://BUCKET[/prefix]",
                   help="keep the cluster's code packages and layers in an S3-compatible "
                        "bucket (credentials and region from AWS_ACCESS_KEY_ID, "
                        "AWS_SECRET_ACCESS_KEY, AWS_REGION); needs --state; default: the "
                        "database's code_blobs table")
    s.add_argument("--s3-endpoint", default=None, metavar="URL",
                   help="the --code-store's endpoint, e.g. http://seaweedfs:8333 (default: "
                        "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3 in AWS_REGION)")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="nodes (processes) on this host sharing the port; needs --state; "
                        "default: 1 without --state, the number of CPUs with it")
    s.add_argument("--node-capacity", type=int, default=DEFAULT_NODE_CAPACITY, metavar="N",
                   help="synchronous invocations a node runs before the cluster routes a "
                        "function's calls to the next node in its order")
    s.add_argument("--peer-host", default=None, metavar="HOST",
                   help="address peers reach this node at (default: --host; in Kubernetes "
                        "the pod IP)")
    s.add_argument("--routing", choices=("home", "local"), default="home",
                   help="home: run a function's calls on its home node (forwarded; warm "
                        "environments reused across the cluster); local: run every call on "
                        "the node that accepted it (no hop; each node warms its own)")
    s.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)


def check_cluster_args(args) -> str | None:
    """What is wrong with the combination, as a message naming the fix; None if fine."""
    from runner.cluster.auth import is_loopback

    if args.workers is None:
        args.workers = (os.cpu_count() or 1) if args.state else 1
    if args.workers < 1:
        return "--workers: must be at least 1"
    if args.workers > 1 and not args.state:
        return ("--workers: several nodes share their state through PostgreSQL; pass "
                "--state postgresql://... (or --workers 1)")
    if args.state and not args.state.startswith(("postgresql://", "postgres://")):
        return f"--state: {args.state!r} is not a postgresql:// URL"
    problem = check_code_store(args)
    if problem:
        return problem
    if not is_loopback(args.host) and not settings.cluster_token():
        return (f"--host {args.host}: listening beyond loopback needs a token; set RUNNER_TOKEN "
                "(the same on every node and client)")
    return None


def check_code_store(args) -> str | None:
    """--code-store's problem, named (the bucket itself is reached when the node starts)."""
    code_store = getattr(args, "code_store", None)
    if not code_store:
        return None
    if not args.state:
        return ("--code-store: the code store is shared by the nodes of a cluster; pass "
                "--state postgresql://... too (the embedded runner keeps code in its data "
                "directory)")
    from runner.errors import InvalidParameter
    from runner.storage.s3_blobs import S3Location

    try:
        S3Location.parse(code_store, args.s3_endpoint)
    except InvalidParameter as exc:
        return str(exc)
    return None


def supervise(args, data_dir: str) -> int:
    from runner.cluster.workers import Supervisor

    argv = sys.argv[sys.argv.index("serve") + 1:] if "serve" in sys.argv else []
    return Supervisor(argv, args.workers, args.host, args.port, args.http_port, data_dir).run()


def _forwarder(runner, args):
    """The gRPC edge's forwarder when the state is shared, else None (one node)."""
    if not runner.state.shared or args.routing == "local":
        return None
    from runner.cluster.router import Router
    from runner.errors import PlatformError
    from runner.service.grpc.cluster import Forwarder

    box = SimpleNamespace(server=None)  # the server is built after its forwarder

    def inflight() -> int:
        return box.server.invocations.held if box.server is not None else 0

    def reserved(name: str, qualifier: str | None) -> bool:
        # The registry's cached version (no round trip on the invoke path). A function that
        # does not resolve is not routed as reserved: wherever it runs, it is refused the same.
        try:
            return runner.get(name, qualifier).config.concurrency_reserved
        except PlatformError:
            return False

    router = Router(runner.state.nodes, runner.state.node_id, inflight, args.node_capacity)
    forwarder = Forwarder(router, runner.state.node_id, settings.cluster_token(), reserved)
    forwarder.box = box
    # Every other entry point's calls of a reserved function run at its home too (decision
    # 084): the invocation layer is handed the forwarder's placement as a callable.
    runner.remote_invoke = forwarder.invoke_remote
    return forwarder


def _register(runner, server, forwarder, args) -> None:
    """Bind the private peer port and announce this node's address and capacity."""
    if not runner.state.shared:
        return
    from runner.storage.postgres.nodes import Node

    host = args.peer_host or args.host
    bind_host = args.host if args.host not in ("", "0.0.0.0", "::") else "0.0.0.0"
    peer_port = server.add_insecure_port(f"{bind_host}:0")
    if forwarder is not None:
        forwarder.box.server = server
    address = f"{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{peer_port}"
    runner.state.nodes.register(Node(runner.state.node_id, address, args.node_capacity))
    runner.state.heartbeat.inflight = lambda: server.invocations.held
    # Provisioned concurrency at each function's home only (cluster/provisioner.py). Without
    # routing (--routing local) every node provisions, as every node runs every function.
    from runner.cluster.provisioner import Provisioner

    if forwarder is not None:
        def is_home(name: str) -> bool:
            return forwarder.router.home(name) is None
    else:
        def is_home(name: str) -> bool:
            return True
    provisioner = Provisioner(runner.registry.list_functions, is_home, runner.pool.provision)
    provisioner.tick()
    provisioner.start()
    server.provisioner = provisioner  # type: ignore[attr-defined]
    print(f"node {runner.state.node_id} peers at {address}", flush=True)


MAPPING_LEASE_S = 10.0  # a dead node's mappings are polled again this long after its last renewal


def mapping_lease(runner):
    """(store, may_poll) for the event sources: the shared store and a lease per mapping in a
    cluster, so exactly one live node polls each; (None, None) on one node."""
    if not runner.state.shared:
        return None, None
    from runner.storage.postgres.mappings import PostgresMappingStore

    nodes, node_id = runner.state.nodes, runner.state.node_id

    def may_poll(uuid: str) -> bool:
        try:
            return nodes.acquire(f"mapping:{uuid}", node_id, MAPPING_LEASE_S)
        except Exception:  # the database is away: keep nothing we cannot renew
            return False

    return PostgresMappingStore(runner.state.url), may_poll


def workflow_store(runner):
    """(store, owner) for the workflow engine: in a cluster the shared PostgreSQL store, so
    state machines and executions are the same through every node, with this node's id as the
    owner of the executions' leases (decision 070: one node drives each RUNNING execution, the
    others adopt a dead node's); (None, None) on one node (SQLite in the data directory)."""
    if not runner.state.shared:
        return None, None
    from runner.storage.postgres.workflows import PostgresWorkflowStore

    return PostgresWorkflowStore(runner.state.url), runner.state.node_id


join_cluster = SimpleNamespace(forwarder=_forwarder, register=_register)
