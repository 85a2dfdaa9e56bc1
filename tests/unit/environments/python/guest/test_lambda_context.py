"""The variables naming the invocation (runner/environments/python/guest/python_lambda_context.py):
_X_AMZN_TRACE_ID (InPlaceVar), set by the bootstrap's invoke: one value per invocation, seen by
os.environ, os.getenv and child processes alike, without growing the process (glibc's setenv
keeps every distinct value it was given).

Run in a child interpreter: the bootstrap points the C environment at a buffer of its own,
which must not outlive the module in the pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runner.environments.python.runtime import GUEST_DIR as RUNTIMES

# 300,000 distinct ids through os.environ grow this process by ~8 MB on glibc (measured); with
# the bootstrap's buffer, by nothing.
SCRIPT = r"""
import json, os, resource, subprocess, sys
sys.path.insert(0, sys.argv[1])
import python_bootstrap as boot

def child():
    return subprocess.run(["/bin/sh", "-c", 'printf %s "${_X_AMZN_TRACE_ID-unset}"'],
                          capture_output=True, text=True).stdout

def handler(event, context):
    seen = [os.environ.get("_X_AMZN_TRACE_ID"), os.getenv("_X_AMZN_TRACE_ID")]
    if event.get("child"):
        seen.append(child())
    if event.get("own"):
        os.environ["_X_AMZN_TRACE_ID"] = event["own"]
    if event.get("drop"):
        del os.environ["_X_AMZN_TRACE_ID"]
    return seen

def call(rid, event):
    reply = boot.invoke(handler, {"id": rid, "payload": json.dumps(event).encode(), "deadline_ms": 0})
    return json.loads(reply["payload"])

out = {}
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for i in range(300_000):
    call("%036d" % i, {})
out["grown_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
out["first"] = call("r-1", {"child": True, "own": "Root=mine"})
out["after_own"] = [os.environ.get("_X_AMZN_TRACE_ID"), child()]
out["next"] = call("r-2", {"child": True, "drop": True})
out["after_drop"] = [os.environ.get("_X_AMZN_TRACE_ID"), child()]
out["long"] = call("x" * 400, {"child": True})
out["short_again"] = call("r-3", {"child": True})
boot.warm_up()  # what a zygote child runs before it is handed out: leaves the variable unset
out["after_warm_up"] = [os.environ.get("_X_AMZN_TRACE_ID"), child()]
print(json.dumps(out))
"""


def test_trace_id_per_invocation_is_consistent_and_does_not_grow_the_process():
    run = subprocess.run([sys.executable, "-I", "-S", "-c", SCRIPT, os.path.abspath(RUNTIMES)],
                         capture_output=True, text=True, timeout=120, env={"PATH": os.defpath})
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["grown_kb"] < 2048, got
    assert got["first"] == ["Root=r-1", "Root=r-1", "Root=r-1"]
    assert got["after_own"] == ["Root=mine", "Root=mine"]  # the handler's own value stands...
    assert got["next"] == ["Root=r-2", "Root=r-2", "Root=r-2"]  # ...until the next invocation
    assert got["after_drop"] == [None, "unset"]
    long_value = "Root=" + "x" * 400  # over the buffer: the ordinary path, same result
    assert got["long"] == [long_value, long_value, long_value]
    assert got["short_again"] == ["Root=r-3", "Root=r-3", "Root=r-3"]
    assert got["after_warm_up"] == [None, "unset"]
