import contextlib

from tests.state_fixtures import pg_server  # noqa: F401  (PostgreSQL for the cluster tests)


class NodeArgs:
    """The `runner serve` arguments join_cluster reads, for nodes on loopback."""

    host, peer_host, routing = "127.0.0.1", None, "home"

    def __init__(self, node_capacity: int) -> None:
        self.node_capacity = node_capacity


def start_grpc_nodes(url: str, tmp_path, n: int, capacity: int, **runner_options) -> list:
    """n nodes on one database, each a Runner behind a gRPC server joined to the cluster:
    [(runner, server, forwarder, "127.0.0.1:PORT")]. Stop them with stop_grpc_nodes."""
    from runner import Runner
    from runner.cli.cluster_serve import join_cluster
    from runner.service.grpc.server import build_server

    args, nodes = NodeArgs(capacity), []
    try:
        for i in range(n):
            runner = Runner(str(tmp_path / f"n{i}"), idle_ttl_s=60, state=url, **runner_options)
            forwarder = join_cluster.forwarder(runner, args)
            server, port = build_server(runner, "127.0.0.1", 0, cluster=forwarder)
            join_cluster.register(runner, server, forwarder, args)
            server.start()
            nodes.append((runner, server, forwarder, f"127.0.0.1:{port}"))
    except BaseException:
        stop_grpc_nodes(nodes)
        raise
    return nodes


def stop_grpc_nodes(nodes: list) -> None:
    for runner, server, forwarder, _ in nodes:
        server.stop(grace=0).wait()
        server.provisioner.close()
        forwarder.close()
        runner.close()


@contextlib.contextmanager
def http_nodes(url: str, tmp_path, n: int, *, push: bool = False, **runner_options):
    """n nodes on one database, each a Runner behind an HTTP front (with a Push, not started:
    no schedules, when `push`): yields [(runner, front, push or None)], stops them after."""
    from runner import Runner
    from runner.service.http import HttpFront
    from runner.service.push import Push

    nodes = []
    try:
        for i in range(n):
            runner = Runner(str(tmp_path / f"n{i}"), idle_ttl_s=60, state=url, **runner_options)
            pushes = Push(runner) if push else None
            nodes.append((runner, None, pushes))
            front = HttpFront(runner, "127.0.0.1", 0, push=pushes)
            front.start()
            nodes[-1] = (runner, front, pushes)
        yield nodes
    finally:
        for runner, front, pushes in nodes:
            if front is not None:
                front.stop()
            if pushes is not None:
                pushes.close()
            runner.close()
