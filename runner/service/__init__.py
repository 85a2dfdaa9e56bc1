"""The network edges: `grpc/` (servicers, the error -> status table, the RPC pool),
`http/` (the Lambda Invoke API and function routes), `proto/` (generated from proto/).

May import: `runner.invocation` and everything below it.
"""
