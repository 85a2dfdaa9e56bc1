"""The committed generated code matches a fresh generation from proto/*.proto."""

import importlib.util
import os
import subprocess
import sys

from tests.conftest import ROOT


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_proto", os.path.join(ROOT, "scripts", "gen_proto.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_current(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_proto.py"), str(tmp_path)], check=True)
    committed = os.path.join(ROOT, "runner", "service", "proto")
    names = _gen_module().generated_names()
    assert "runner_api_pb2.py" in names
    for name in names:
        with open(os.path.join(committed, name)) as a, open(tmp_path / name) as b:
            assert a.read() == b.read(), f"{name} is stale: run `make proto`"
