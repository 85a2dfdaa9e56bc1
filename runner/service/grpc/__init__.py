"""The gRPC edge: `server.py` (servicers, health, reflection), `status.py` (the one error ->
gRPC status table), `convert.py` (model <-> protobuf), `executor.py` (the RPC thread pool).
"""
