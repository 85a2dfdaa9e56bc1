"""`runner serve`: the server process, a gRPC edge and optionally the HTTP edge over one Runner.

The Runner and the gRPC and HTTP servers are imported inside `cmd_serve`: they load every
runtime and grpc (~140 ms), which building the parser and the client commands must not
(client.py says why).
"""

from __future__ import annotations

import argparse
import logging
import sys

from runner import settings
from runner.cli.client import EXIT_PLATFORM_ERROR
from runner.cli.examples import default_guests_dir, deploy_examples
from runner.errors import InternalError, InvalidParameter, ResourceConflict
from runner.stop_signal import StopSignal

# The port a client finds with no --address and no $RUNNER_ADDRESS.
DEFAULT_PORT = int(settings.DEFAULT_ADDRESS.rpartition(":")[2])


def cmd_serve(args) -> int:
    from runner.invocation.runner import Runner, default_data_dir
    from runner.service.grpc.server import build_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Before anything is announced: a supervisor that sends SIGTERM as soon as it reads
    # "listening" must get a clean shutdown, not the default action (death by the signal).
    # The handler only records the request (runner/stop_signal.py says why not an Event):
    # the main thread shuts down, outside signal context.
    stop = StopSignal()
    data_dir = args.data_dir or default_data_dir()
    from runner.model import set_region

    try:
        set_region(args.region)  # before any ARN or environment is made (issue 20)
    except InvalidParameter as exc:
        print(f"runner: --region: {exc}", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    # Cluster (docs/cluster.md): N nodes on this host, a shared state, a token beyond loopback.
    from runner.cli.cluster_serve import check_cluster_args, supervise

    problem = check_cluster_args(args)
    if problem:
        print(f"runner: {problem}", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    if args.workers > 1:
        return supervise(args, data_dir)
    try:
        runner = Runner(data_dir, idle_ttl_s=args.idle_ttl, zygote_ttl_s=args.zygote_ttl,
                        max_environments=args.max_environments,
                        async_workers=args.async_workers, async_retry_base_s=args.retry_delay,
                        state=args.state, code_store=args.code_store,
                        s3_endpoint=args.s3_endpoint)
    except (ResourceConflict, InvalidParameter, InternalError) as exc:
        # Another runner holds the data directory; the code store is refused or unreachable.
        print(f"runner: {exc}", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    if args.examples is not None:
        root = args.examples or default_guests_dir()
        if root is None:
            print("runner: --examples: no guests/ directory found; pass its path", file=sys.stderr)
            return EXIT_PLATFORM_ERROR
        names = deploy_examples(runner, root)
        print(f"deployed {len(names)} example functions: {', '.join(names)}", flush=True)
    from runner.cli.cluster_serve import join_cluster, workflow_store
    from runner.service.push import Push

    # Workflows (issue 21): resumes the Standard executions a stop or crash interrupted; in a
    # cluster, those of dead nodes too (a lease per execution, decision 070).
    from runner.workflows.engine import WorkflowEngine

    push = Push(runner)  # schedules, triggers, topics (docs/events.md)
    wf_store, wf_owner = workflow_store(runner)
    workflows = WorkflowEngine(runner.data_dir, runner.invoke, store=wf_store, owner=wf_owner,
                               on_status=runner.metrics.workflow_execution)
    workflows.start()
    try:
        forwarder = join_cluster.forwarder(runner, args)
        server, port = build_server(runner, args.host, args.port, push=push, workflows=workflows,
                                    cluster=forwarder, token=settings.cluster_token(),
                                    reuse_port=args.reuse_port)
        join_cluster.register(runner, server, forwarder, args)
    except OSError as exc:
        push.close()
        workflows.close()
        runner.close()
        print(f"runner: {exc}", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    sources = _start_event_sources(runner, server)  # event source mappings (issue 18)
    server.start()
    # Scripts and tests read the bound port from this line (--port 0 picks a free one).
    print(f"listening on {args.host}:{port} (data in {data_dir})", flush=True)
    # HTTP front (docs/http-and-async.md).
    http_front = None
    if args.http_port is not None:
        from runner.service.http import HttpFront

        try:
            http_front = HttpFront(runner, args.host, args.http_port, grace=args.grace,
                                   push=push, workflows=workflows, reuse_port=args.reuse_port,
                                   token=settings.cluster_token(), sources=sources)
        except OSError as exc:
            sources.close()
            server.stop(grace=0).wait()
            push.close()
            workflows.close()
            runner.close()
            print(f"runner: {exc}", file=sys.stderr)
            return EXIT_PLATFORM_ERROR
        http_front.start()
        print(f"http listening on {args.host}:{http_front.port}", flush=True)
    metrics_server = _serve_metrics(runner, args)  # issue 22: --metrics-port
    if metrics_server is False:
        if http_front is not None:
            http_front.stop()
        sources.close()
        server.stop(grace=0).wait()
        push.close()
        workflows.close()
        runner.close()
        return EXIT_PLATFORM_ERROR
    push.start()  # the scheduler: slots missed while down fire now (docs/events.md)
    stop.wait()
    print("shutting down: finishing in-flight invocations", flush=True)
    if metrics_server is not None:
        metrics_server.shutdown()
        metrics_server.server_close()
    server.health_servicer.enter_graceful_shutdown()
    runner.end_log_follows()  # followers would hold the grace period for nothing
    # Grace covers the longest invocation Lambda allows to finish; new RPCs are refused at once.
    if http_front is not None:
        http_front.stop()
    sources.close()  # each poller after its invocation in flight; unfinished batches stay on the broker
    server.stop(grace=args.grace).wait()
    if getattr(server, "provisioner", None) is not None:  # cluster (cluster_serve.py)
        server.provisioner.close()
    push.close()
    workflows.close()
    runner.close()
    print("stopped", flush=True)
    return 0


def _start_event_sources(runner, server):
    """The mappings' pollers (docs/event-sources.md) and their gRPC service."""
    from runner.cli.cluster_serve import mapping_lease
    from runner.service.grpc.event_sources import add_to_server
    from runner.sources.manager import EventSources

    store, may_poll = mapping_lease(runner)  # a cluster: shared mappings, one poller each
    sources = EventSources(runner, store, may_poll=may_poll)
    add_to_server(server, sources)
    sources.start()
    return sources


def _serve_metrics(runner, args):
    """GET /metrics on a port of its own (a gRPC-only server has no HTTP front to carry it):
    prometheus-client's small server on a thread. None when not asked, False when the port
    cannot be had (the message is printed)."""
    if args.metrics_port is None:
        return None
    from prometheus_client import start_http_server

    try:
        srv, _ = start_http_server(args.metrics_port, addr=args.host,
                                   registry=runner.metrics.registry)
    except OSError as exc:
        print(f"runner: cannot listen on {args.host}:{args.metrics_port} for metrics "
              f"({exc.strerror}); pick another --metrics-port", file=sys.stderr)
        return False
    print(f"metrics on http://{args.host}:{srv.server_port}/metrics", flush=True)
    return srv


def add_commands(sub) -> None:
    s = sub.add_parser("serve", help="run the gRPC server")
    s.add_argument("--data-dir", help="registry, code and logs (default: a per-user data directory)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    s.add_argument("--examples", nargs="?", const="", default=None, metavar="DIR",
                   help="deploy the example functions (from DIR, default the repository's guests/)")
    s.add_argument("--idle-ttl", type=float, default=300.0, help="seconds an idle environment is kept")
    s.add_argument("--zygote-ttl", type=float, default=None, metavar="SECONDS",
                   help="seconds a Python zygote with no environment left is kept after its "
                        "last cold start (default: the idle TTL; decision 086)")
    s.add_argument("--max-environments", type=int, default=256, help="host-wide environment limit")
    s.add_argument("--grace", type=float, default=30.0, help="seconds to finish in-flight work on stop")
    s.add_argument("--http-port", type=int, default=None, metavar="PORT",
                   help="also serve HTTP (Invoke API and function routes) on HOST:PORT (0 = any)")
    s.add_argument("--region", default="us-east-1",
                   help="the region in ARNs and in functions' AWS_REGION (default us-east-1)")
    s.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="also serve Prometheus metrics at http://HOST:PORT/metrics (0 = any)")
    s.add_argument("--async-workers", type=int, default=4, help="concurrent asynchronous invocations")
    s.add_argument("--retry-delay", type=float, default=60.0, metavar="SECONDS",
                   help="wait before the first retry of a failed async event (doubles after)")
    from runner.cli.cluster_serve import add_cluster_arguments

    add_cluster_arguments(s)
    s.set_defaults(func=cmd_serve)
