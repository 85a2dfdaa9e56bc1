"""Where a Node function's handler module is in its code package, and what kind of module it is.

The handler setting is Lambda's `path/module.export`; node resolves `module` to a .js, .mjs or
.cjs file (or a package under node_modules/). runtime.py checks at deploy time that one exists;
snapshot_build.py needs the file itself and whether node treats it as CommonJS, since only
CommonJS can be bundled into a startup snapshot.
"""

from __future__ import annotations

import json
import os

from runner.model import FunctionVersion

EXTENSIONS = (".js", ".mjs", ".cjs")  # in node's order of preference for an extensionless name


def handler_files(version: FunctionVersion) -> tuple[str, list[str]]:
    """(module name, candidate files relative to the code dir) for the configured handler."""
    spec = version.config.handler
    slash = spec.rfind("/")
    module_root, rest = spec[: slash + 1], spec[slash + 1 :]
    module = rest.split(".", 1)[0]
    # Lambda's order: the extensionless file itself first, then .js, .mjs, .cjs.
    return module, [f"{module_root}{module}"] + [f"{module_root}{module}{ext}" for ext in EXTENSIONS]


def module_present(version: FunctionVersion) -> bool:
    """Whether the handler's module exists: one of its candidate files, or else a package of
    that name shipped in node_modules/."""
    module, candidates = handler_files(version)
    root = version.code_dir
    if any(os.path.isfile(os.path.join(root, c)) for c in candidates):
        return True
    return os.path.isdir(os.path.join(root, "node_modules", module))


def module_type(code_dir: str, file: str) -> str:
    """node's rule for a .js file: the nearest package.json's "type" (within the code)."""
    d = os.path.dirname(file)
    root = os.path.realpath(code_dir)
    while True:
        pj = os.path.join(d, "package.json")
        if os.path.isfile(pj):
            try:
                with open(pj) as f:
                    return str(json.load(f).get("type", "commonjs"))
            except (OSError, ValueError):
                return "commonjs"
        if os.path.realpath(d) == root or os.path.dirname(d) == d:
            return "commonjs"
        d = os.path.dirname(d)


def commonjs_file(version: FunctionVersion) -> str:
    """Absolute path of the handler's CommonJS file. Raises ValueError naming why there is
    none: the handler is an ES module (.mjs, or .js under "type": "module") or not a file."""
    _, candidates = handler_files(version)
    files = [os.path.join(version.code_dir, c) for c in candidates
             if c.endswith((".js", ".cjs"))]
    file = next((f for f in files if os.path.isfile(f)), None)
    if file is None:
        raise ValueError("the handler is not a .js/.cjs file (ES modules cannot be snapshotted)")
    if file.endswith(".js") and module_type(version.code_dir, file) == "module":
        raise ValueError('the handler is an ES module ("type": "module" in package.json)')
    return file
