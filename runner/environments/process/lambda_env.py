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

from runner.confinement import namespaces
from runner.model import FunctionVersion, region


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
        "AWS_REGION": region(),
        "AWS_DEFAULT_REGION": region(),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": version.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": version.version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{version.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[{version.version}]{version.revision}",
    }
    env.update(layer_paths(version))
    if cfg.log_format == "JSON":  # Lambda's LoggingConfig, read by the runtimes' log setup
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["AWS_LAMBDA_LOG_LEVEL"] = cfg.application_log_level or "INFO"
    env.update(cfg.environment)
    # The execution role's credentials last: the user's environment cannot hold these names
    # (model.RESERVED_CREDENTIAL_ENV), and the role's endpoints win over a user-set one.
    env.update(version.role_env)
    env.update(runtime_vars or {})
    return env


def layer_paths(version: FunctionVersion) -> dict[str, str]:
    """Where the runtimes look for modules, as on Lambda (issue 20). Node: NODE_PATH, Lambda's
    value (the layers' node_modules, then the runtime's, then the task root), for every Node
    function. Python: the bootstrap puts /opt/python and its site-packages on sys.path, told
    where /opt is by `_RUNNER_OPT` (removed from the environment before user code runs).
    In the sandbox /opt is the merged layers' mount (namespaces.OPT_ROOT); without namespaces
    the guest reads the host directory itself, and the host's own /opt is never named."""
    sandboxed = namespaces.mode() != "off"
    opt = (namespaces.OPT_ROOT if sandboxed else version.opt_dir) if version.opt_dir else ""
    task = namespaces.TASK_ROOT if sandboxed else version.code_dir
    out: dict[str, str] = {}
    if version.config.runtime == "nodejs":
        # Lambda's: /opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:
        # /var/runtime/node_modules:/var/runtime:/var/task (the runtime's own directories do
        # not exist here: the bootstrap needs no npm modules).
        root = opt or (namespaces.OPT_ROOT if sandboxed else "")
        layers = [f"{root}/nodejs/node20/node_modules", f"{root}/nodejs/node_modules"] \
            if root else []
        out["NODE_PATH"] = ":".join([*layers, task])
    if opt and version.config.runtime == "python":
        out["_RUNNER_OPT"] = opt
    return out

