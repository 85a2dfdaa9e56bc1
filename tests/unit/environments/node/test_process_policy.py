"""How a node process is started (runner/environments/node/process_policy.py) and where its
handler module is (handler.py): pure functions, no node process started."""

from __future__ import annotations

import pytest

from runner.environments.node import handler, process_policy
from runner.environments.node.runtime import NodeRuntime
from runner.environments.node.snapshot import OPT_IN_VAR, SnapshotStore
from runner.model import MB
from tests.unit.environments.node._node_helpers import version, write_code


def test_opt_in_variable_is_the_documented_name():
    assert OPT_IN_VAR == "RUNNER_NODE_SNAPSHOT"  # docs/runtimes-nodejs.md names it


def test_argv_with_prlimit_sets_rlimit_data_before_node():
    argv = process_policy.node_argv("/usr/bin/node", "/usr/bin/prlimit", 256)
    data = (256 + process_policy.DATA_HEADROOM_MB) * MB
    assert argv == ["/usr/bin/prlimit", f"--data={data}:{data}", "--", "/usr/bin/node",
                    f"--max-old-space-size={process_policy.old_space_mb(256)}",
                    f"--max-semi-space-size={process_policy.SEMI_SPACE_MB}"]


def test_argv_without_prlimit_is_node_alone():
    assert process_policy.node_argv("/n", None, 128)[0] == "/n"


def test_runtime_command_ends_with_the_bootstrap(tmp_path):
    rt = NodeRuntime("/n", prlimit=None)
    cmd = rt.command(version(tmp_path, memory_mb=512))
    assert cmd == process_policy.node_argv("/n", None, 512) + [process_policy.BOOTSTRAP]
    assert rt.address_space_limit is False


def test_store_takes_the_prlimit_choice_of_its_caller(tmp_path):
    s = SnapshotStore("/n", str(tmp_path / "s"), prlimit=None)
    try:
        assert s.prlimit is None and s.node_path == "/n"
    finally:
        s.close()


def test_handler_resolution(tmp_path):
    code = write_code(tmp_path, {"lib/app.cjs": "exports.h = 1;", "pkg/package.json": '{"type": "module"}',
                                 "pkg/esm.js": "export const h = 1;"})
    assert handler.handler_files(version(code, "lib/app.h")) == (  # Lambda's order (issue 20)
        "app", ["lib/app", "lib/app.js", "lib/app.mjs", "lib/app.cjs"])
    assert handler.module_present(version(code, "lib/app.h"))
    assert not handler.module_present(version(code, "lib/missing.h"))
    assert handler.commonjs_file(version(code, "lib/app.h")) == str(code / "lib" / "app.cjs")
    with pytest.raises(ValueError, match="ES module"):
        handler.commonjs_file(version(code, "pkg/esm.h"))
