"""A cluster of nodes (one `runner serve` process each) sharing a PostgreSQL state
(docs/cluster.md): which node is a function's home (`rendezvous.py`), the view of live peers
and the choice of where an invocation runs (`router.py`), the shared token between nodes and
clients (`auth.py`), and `--workers N` on one host (`workers.py`). Membership rows and leases
themselves live in storage (runner/storage/postgres/nodes.py): the queue needs them too.

Forwarding an invocation to its home node is done by the gRPC edge
(runner/service/grpc/forward.py): it owns the stubs.

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.sigv4_signing`,
`runner.storage`.
"""
