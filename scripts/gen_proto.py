"""Regenerates runner/service/proto/ from proto/runner_api.proto (grpcio-tools).

The generated grpc module imports its sibling as a top-level module; we rewrite that one line
to a package-relative import so the generated code lives inside `runner.service.proto`.
tests/unit/service/test_proto_generated.py checks the committed files match a fresh generation.
"""

import os
import re
import sys
import tempfile

from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "runner", "service", "proto")


def generate(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{os.path.join(ROOT, 'proto')}", f"-I{include}",
        f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", f"--pyi_out={out_dir}",
        "runner_api.proto",
    ])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    grpc_file = os.path.join(out_dir, "runner_api_pb2_grpc.py")
    text = open(grpc_file).read()
    text = re.sub(r"^import runner_api_pb2 as", "from . import runner_api_pb2 as", text, flags=re.M)
    open(grpc_file, "w").write(text)
    init = os.path.join(out_dir, "__init__.py")
    if not os.path.exists(init):
        open(init, "w").write('"""Generated from proto/runner_api.proto by scripts/gen_proto.py."""\n')


if __name__ == "__main__":
    generate(sys.argv[1] if len(sys.argv) > 1 else OUT)
