"""The Node bootstrap's _X_AMZN_TRACE_ID: a new value per invocation must not grow the process
(glibc's setenv keeps every distinct value it was given; see installTraceVar)."""

from __future__ import annotations

import json
import os
import subprocess

from runner.environments.node.process_policy import BOOTSTRAP, find_node

# 500,000 distinct ids through the real process.env leak ~70 MB on glibc (~140 B each). V8's
# heap keeps pages it grew into even after a full GC (~10 MB here with 1 MB semi-spaces),
# hence the bound of 24 MB rather than zero.
N = 500_000
SCRIPT = """
const boot = require(%s);
process.env._X_AMZN_TRACE_ID = 'set-before';
boot.installTraceVar();
const before = process.env._X_AMZN_TRACE_ID;
global.gc();
const r0 = process.memoryUsage().rss;
for (let i = 0; i < %d; i++) process.env._X_AMZN_TRACE_ID = 'Root=' + String(i).padStart(36, '0');
global.gc();
const grown = process.memoryUsage().rss - r0;
const last = process.env._X_AMZN_TRACE_ID;
process.env.OTHER_VAR = 'x';
console.log(JSON.stringify({before, grown, last, other: process.env.OTHER_VAR,
                            path: typeof process.env.PATH}));
"""


def test_trace_id_assignments_do_not_grow_the_process():
    node = find_node()
    assert node is not None, "these tests need node (this project's machines have Node 20)"
    out = subprocess.run([node, "--expose-gc", "--max-semi-space-size=1", "-e",
                          SCRIPT % (json.dumps(BOOTSTRAP), N)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": os.defpath}, check=True)
    got = json.loads(out.stdout)
    assert got["before"] == "set-before"  # a value present at start is kept
    assert got["last"] == "Root=" + str(N - 1).rjust(36, "0")
    assert got["other"] == "x" and got["path"] == "string"  # other names go to the real env
    assert got["grown"] < 24 * 1024 * 1024, got
