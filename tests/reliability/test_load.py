"""A real server under a mixed load: no platform error, and timeouts reported on time.

Before (issue 17, item 7), in one of four 32-client x 60 s runs a zygote stopped answering
fork requests (10 s each), 10 calls passed a 30 s client deadline, and 1 s timeouts were
reported after up to 14 s. Causes fixed: the zygote forked at its function's CPU share (7% of
a CPU at 128 MB; now a whole CPU after its init), and a destroyed environment was reaped and
its cgroups removed before a timeout was returned (now in the background:
environments/process/teardown.py).

Short form (`make test`): 8 clients x 5 s. On a shared 2-core CI host its p99 is noise (a
cold start alone took up to 3.5 s at load average 400), so it asserts the outcome of every
call (0 platform errors, 0 wrong outcomes) and a bound only a stall of the old kind crosses:
no 1 s timeout reported after 8 s (an unanswered fork request alone took 10 s).
Long form (`make test-long`): the issue's 32 clients x 60 s, and 1 s timeouts within 1.5 s at
p99. RUNNER_LOAD_RUNS=10 repeats it (the issue asks for ten consecutive clean runs).
Figures: `python bench/load_bench.py` (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import shutil

import grpc
import pytest

from bench.load import TIMEOUT_S, deploy_all, p99, run_load
from tests.reliability.conftest import Server

RUNS = int(os.environ.get("RUNNER_LOAD_RUNS", "1"))
SHORT_MAX_TIMEOUT_S = TIMEOUT_S + 7.0  # below FORK_TIMEOUT_S (10 s): a stalled zygote crosses it


def _runtimes() -> tuple[str, ...]:
    return ("python", "wasm") + (("nodejs",) if shutil.which("node") else ())


@pytest.mark.parametrize("run", range(RUNS))
def test_mixed_load_has_no_platform_errors_and_timeouts_on_time(tmp_path, long_run, run):
    clients, seconds = (32, 60.0) if long_run else (8, 5.0)
    server = Server(str(tmp_path / "data"), str(tmp_path / "server.log"))
    try:
        with grpc.insecure_channel(server.grpc_address) as channel:
            targets = deploy_all(channel, _runtimes(), concurrency=2 * clients)
        result = run_load(server.grpc_address, targets, clients, seconds, seed=17 + run)
    finally:
        server.stop()
    summary = result.summary()
    print(json.dumps(summary, indent=1))
    assert result.calls > clients, summary  # the load ran
    assert result.platform_errors == [], summary
    assert result.wrong == [], summary
    timeouts = result.kind("timeout")
    assert timeouts, summary  # some calls timed out on purpose
    if long_run:
        assert p99(timeouts) < 1.5 * TIMEOUT_S, summary
    else:
        assert max(timeouts) < SHORT_MAX_TIMEOUT_S, summary
    assert server.proc.returncode == 0
