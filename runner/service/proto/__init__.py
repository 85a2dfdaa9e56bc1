"""Generated from proto/runner_api.proto by scripts/gen_proto.py."""
