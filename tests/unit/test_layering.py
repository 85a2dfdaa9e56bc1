"""Lower layers never import upper ones.

model/invocation_record/errors/settings -> confinement -> environments -> pool -> storage -> metrics ->
invocation -> events (sources, triggers, topics, schedules, workflows, cluster) -> service -> cli
(docs/architecture.md). The embedding API (`runner/__init__.py`) sits on top.

The event packages sit above the invocation layer because each of them ends in an invocation
(a poller's batch, a pushed record, a schedule's slot, a workflow's task, a forwarded call);
they never import each other's internals. Metrics sit below invocation so that the invocation
layer can count what it does without an upward import.
"""

import ast
import os

from tests.conftest import ROOT

RANKS = {
    "runner.model": 0, "runner.network_policy": 0, "runner.invocation_record": 0, "runner.errors": 0,
    "runner.settings": 0, "runner.stop_signal": 0, "runner.sigv4_signing": 0,
    "runner.confinement": 1,
    "runner.environments": 2,
    "runner.pool": 3,
    "runner.storage": 4,
    "runner.metrics": 4.5,
    "runner.invocation": 5,
    "runner.sources": 5.5, "runner.triggers": 5.5, "runner.topics": 5.5, "runner.schedules": 5.5,
    "runner.workflows": 5.5, "runner.cluster": 5.5,
    "runner.service": 6,
    "runner.cli": 7, "runner.__main__": 7, "runner": 7,
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


def test_every_module_has_a_layer():
    assert [mod for mod, _ in modules() if rank(mod) is None] == []


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


def test_the_ranks_reject_an_upward_import():
    # The check above can only fail if the table orders the layers: an environment importing
    # the pool, or storage importing the invocation layer, is upward.
    assert rank("runner.environments.wasm.backend") < rank("runner.pool.pool")
    assert rank("runner.storage.events") < rank("runner.invocation.runner")
    assert rank("runner.confinement.cgroups") < rank("runner.environments.base")
