"""What a guest process sees of its host: the environment variables of Lambda's runtime contract.

Policy, kept apart from the mechanism that starts the process (launch.py): the reserved
variables Lambda sets for every function (`AWS_LAMBDA_*`, `_HANDLER`, `LAMBDA_TASK_ROOT`, ...),
then the function's own configuration, then the runtime's (its `ProcessRuntime.environment`).
Nothing of the server's own environment is inherited: the dict built here is the guest's whole
environment. Used by plain environments, the Python zygote and Node snapshot builds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from runner.model import FunctionVersion


def guest_environment(version: FunctionVersion, tmp_dir: str,
                      runtime_vars: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment a guest sees: Lambda's reserved variables, then the function's,
    then `runtime_vars` (the runtime's own, `ProcessRuntime.environment`), each overriding the
    one before."""
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
    if cfg.log_format == "JSON":  # Lambda's LoggingConfig, read by the runtimes' log setup
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["AWS_LAMBDA_LOG_LEVEL"] = cfg.application_log_level or "INFO"
    env.update(cfg.environment)
    env.update(runtime_vars or {})
    return env

