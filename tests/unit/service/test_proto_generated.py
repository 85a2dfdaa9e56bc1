"""The committed generated code matches a fresh generation from proto/*.proto."""

import importlib.util
import os
import re
import subprocess
import sys

from tests.conftest import ROOT


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_proto", os.path.join(ROOT, "scripts", "gen_proto.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The generator stamps its own version (a runtime floor); a patch release of grpcio-tools
# changes that line and nothing the .proto files decide, so it is left out of the comparison.
_TOOL_VERSION = re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.M)


def _generated(path) -> str:
    with open(path) as f:
        return _TOOL_VERSION.sub("GRPC_GENERATED_VERSION = ...", f.read())


def test_generated_code_is_current(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_proto.py"), str(tmp_path)], check=True)
    committed = os.path.join(ROOT, "runner", "service", "proto")
    names = _gen_module().generated_names()
    assert "runner_api_pb2.py" in names
    for name in names:
        assert _generated(os.path.join(committed, name)) == _generated(tmp_path / name), \
            f"{name} is stale: run `make proto`"
