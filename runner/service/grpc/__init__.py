"""The gRPC edge: `server.py` (servicers, health, reflection, and `after_response`: work an
RPC schedules to run once its response is sent, such as an invocation's log block),
`status.py` (the one error -> gRPC status table), `convert.py` (model <-> protobuf),
`executor.py` (the RPC thread pool).

May import: `runner.invocation` and everything below it; it calls `Runner` only.
"""
