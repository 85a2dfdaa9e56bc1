"""The committed guest binaries are exactly what guests/wasm/build.sh produces from the sources.

scripts/setup-system.sh installs the toolchains (Debian's wabt; clang-14 with wasi-libc), so a
missing tool fails this test rather than skipping it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

from tests.unit.environments.wasm.wasm_support import GUESTS


def committed_sums() -> dict[str, str]:
    sums = {}
    with open(os.path.join(GUESTS, "SHA256SUMS")) as f:
        for line in f:
            digest, name = line.split()
            sums[name] = digest
    return sums


def test_every_source_has_a_committed_binary_matching_sha256sums():
    sources = sorted(os.path.splitext(n)[0] for n in os.listdir(GUESTS) if n.endswith((".wat", ".c")))
    sums = committed_sums()
    assert sorted(n[:-5] for n in sums) == sources
    for name, digest in sums.items():
        with open(os.path.join(GUESTS, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name


def test_rebuild_is_byte_identical():
    for tool in ("wat2wasm", "clang-14"):
        assert shutil.which(tool), f"{tool} missing: run scripts/setup-system.sh"
    result = subprocess.run(["bash", os.path.join(GUESTS, "build.sh"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "byte-identical" in result.stdout


def test_wasm_examples_are_discovered_and_invocable(tmp_path):
    from runner import Runner
    from runner.cli.examples import deploy_examples

    with Runner(str(tmp_path / "data"), idle_ttl_s=60) as runner:
        deployed = deploy_examples(runner, os.path.dirname(GUESTS))
        wasm = sorted(n for n in deployed if n.startswith("wasm-"))
        assert wasm == ["wasm-c_greeter", "wasm-counter", "wasm-cpu_bound", "wasm-echo",
                        "wasm-heavy_init", "wasm-hello"]
        assert runner.invoke("wasm-echo", b'{"x": 1}').payload == b'{"x": 1}'
        assert runner.invoke("wasm-counter", b"{}").payload == b'{"count":1}'
