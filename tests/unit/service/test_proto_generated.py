"""The committed generated code matches a fresh generation from proto/runner_api.proto."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_generated_code_is_current(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_proto.py"), str(tmp_path)], check=True)
    committed = os.path.join(ROOT, "runner", "service", "proto")
    for name in ("runner_api_pb2.py", "runner_api_pb2_grpc.py", "runner_api_pb2.pyi"):
        with open(os.path.join(committed, name)) as a, open(tmp_path / name) as b:
            assert a.read() == b.read(), f"{name} is stale: run `make proto`"
