"""How a guest process starts: the environment it sees and its placement at the gate.

Shared by every out-of-process runtime: plain environments (process.py), the Python zygote
(zygote_process.py) and Node snapshot builds (node_snapshot.py).
"""

from __future__ import annotations

import time

from runner.confinement import limits, namespaces
from runner.errors import FunctionInitError
from runner.model import FunctionVersion

INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit, at least the function's own timeout
HELLO_TIMEOUT_S = 10.0  # interpreter start; generous because CI machines are shared


def guest_environment(version: FunctionVersion, tmp_dir: str) -> dict[str, str]:
    """The whole environment a guest sees: Lambda's reserved variables, then the function's."""
    cfg = version.config
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": tmp_dir,
        "TMPDIR": tmp_dir,
        "LAMBDA_TASK_ROOT": version.code_dir,
        "_HANDLER": cfg.handler,
        "AWS_REGION": "local-1",
        "AWS_DEFAULT_REGION": "local-1",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": version.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": version.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{version.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[{version.version}]{version.revision}",
    }
    env.update(cfg.environment)
    return env


def place_at_gate(gate: namespaces.Gate, proc, spec: limits.LimitSpec) -> limits.Enforcement:
    """Limits for a sandbox bwrap holds before the runtime's exec (namespaces.Gate): memory and
    pids now, CPU left unlimited until the caller's limit_cpu() after the runtime's hello (its
    start-up runs at full speed, as before). Then the sandbox is released. Raises
    FunctionInitError if bwrap never got there (it exited: bad mount, missing binary)."""
    if gate.wait_sandbox(HELLO_TIMEOUT_S) is None:
        raise FunctionInitError("Runtime failed to start (sandbox set-up failed)", "Runtime.ExitError")
    enforcement = limits.apply(proc.pid, spec, cpu_later=True)
    gate.release()
    return enforcement
