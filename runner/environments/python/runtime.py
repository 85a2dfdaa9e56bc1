"""The Python runtime: `python -I -S -B python_bootstrap.py`, one interpreter per environment
(or per version: the zygote, `python -I -S -B python_zygote.py`, zygote_process.py).

`-I` ignores PYTHON* variables and the user site, `-S` hides the server's site-packages (a guest
sees the standard library and its own code only, as on Lambda minus boto3), `-B` writes no
bytecode into the read-only code directory. The interpreter is the server's own
`sys.executable`, never a shell shim.
"""

from __future__ import annotations

import logging
import os
import sys

from runner.model import FunctionVersion

log = logging.getLogger(__name__)

# What runs inside the sandbox: this package's guest/ folder (its __init__ says why the
# file names carry a prefix).
GUEST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")
BOOTSTRAP = os.path.join(GUEST_DIR, "python_bootstrap.py")
ZYGOTE = os.path.join(GUEST_DIR, "python_zygote.py")


def interpreter(script: str) -> list[str]:
    """argv running `script` (one of the guest scripts above) under the flags of the module
    docstring."""
    return [sys.executable, "-I", "-S", "-B", script]


class PythonRuntime:
    name = "python"
    address_space_limit = True
    # The bootstrap runs this interpreter too, so it reads host frames in marshal (frames.py).
    marshal_frames = True

    def command(self, version: FunctionVersion) -> list[str]:
        return interpreter(BOOTSTRAP)

    def zygote_command(self, version: FunctionVersion) -> list[str]:
        """argv of the version's zygote (zygote_process.py): same interpreter, same flags."""
        return interpreter(ZYGOTE)

    def environment(self, version: FunctionVersion) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "1", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11"}

    def check_code(self, version: FunctionVersion) -> None:
        """Warns, never refuses (issue 20): Lambda accepts any handler name at deploy and
        reports at invoke (Runtime.MalformedHandlerName, Runtime.ImportModuleError); the
        module may also come from a layer (/opt/python) or the standard library."""
        handler = version.config.handler
        if "." not in handler:
            log.warning("%s: handler %r is not module.function; invocations will fail with "
                        "Runtime.MalformedHandlerName", version.name, handler)
            return
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        roots = [version.code_dir]
        if version.opt_dir:
            roots.append(os.path.join(version.opt_dir, "python"))
        candidates = (f"{module}.py", f"{module}/__init__.py", f"{module}.pyc")
        if not any(os.path.exists(os.path.join(r, c)) for r in roots for c in candidates):
            log.warning("%s: module %r not found in the code package or its layers (looked "
                        "for %s); invocations will fail with Runtime.ImportModuleError unless "
                        "it is a standard-library module", version.name, module,
                        ", ".join(candidates))
