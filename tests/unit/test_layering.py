"""Lower layers never import upper ones (sandbox -> pool -> registry -> api -> service -> CLI)."""

import ast
import os

from tests.conftest import ROOT

RANKS = {
    "runner.model": 0, "runner.errors": 0,
    "runner.runtimes": 1, "runner.sandbox": 1,
    "runner.pool": 2,
    "runner.registry": 3,
    "runner.api": 4, "runner.asyncinvoke": 4,
    "runner.service": 5,
    "runner.examples": 6, "runner.cli": 6, "runner.__main__": 6, "runner": 6,
}


def rank(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        r = RANKS.get(".".join(parts[:n]))
        if r is not None:
            return r
    return None


def modules():
    pkg = os.path.join(ROOT, "runner")
    for d, _, files in os.walk(pkg):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                yield rel.removesuffix(".__init__"), path


def test_no_upward_imports():
    bad = []
    for mod, path in modules():
        own = rank(mod)
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("runner") and name != "runner" and rank(name) is not None and rank(name) > own:
                    bad.append(f"{mod} imports {name}")
    assert bad == []
