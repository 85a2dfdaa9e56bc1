"""Regenerates runner/service/proto/ from every proto/*.proto file (grpcio-tools).

One .proto file per service (runner_api.proto for Functions and Invoke, one more per later
service), so that each service's messages change without touching the others.

The generated modules import their siblings as top-level modules; we rewrite those lines to
package-relative imports so the generated code lives inside `runner.service.proto`.
tests/unit/service/test_proto_generated.py checks the committed files match a fresh generation.
"""

import glob
import os
import re
import sys

from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = os.path.join(ROOT, "proto")
OUT = os.path.join(ROOT, "runner", "service", "proto")


def proto_files() -> list[str]:
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(SOURCES, "*.proto")))


def generated_names() -> list[str]:
    """The files generate() writes, for the staleness test."""
    names = []
    for proto in proto_files():
        stem = proto.removesuffix(".proto")
        names += [f"{stem}_pb2.py", f"{stem}_pb2_grpc.py", f"{stem}_pb2.pyi"]
    return names


def generate(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{SOURCES}", f"-I{include}",
        f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", f"--pyi_out={out_dir}",
        *proto_files(),
    ])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    for name in generated_names():
        if not name.endswith(".py"):
            continue
        path = os.path.join(out_dir, name)
        text = open(path).read()
        text = re.sub(r"^import (\w+_pb2) as", r"from . import \1 as", text, flags=re.M)
        open(path, "w").write(text)
    init = os.path.join(out_dir, "__init__.py")
    if not os.path.exists(init):
        open(init, "w").write('"""Generated from proto/*.proto by scripts/gen_proto.py."""\n')


if __name__ == "__main__":
    generate(sys.argv[1] if len(sys.argv) > 1 else OUT)
