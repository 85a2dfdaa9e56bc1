"""Confinement mechanisms: what keeps a guest in its box, independent of any runtime.

`cgroup_hierarchy.py` (where groups go on v2/v1, writing and removing them), `cgroups.py`
(one environment's groups: limits, counters, kill-all), `limits.py` (rlimits + cgroup limits
per environment, the CPU share per memory size), `namespaces.py` (bubblewrap namespaces, the
uid drop), `gate.py` (the gate that holds a sandbox until it is in its cgroups), `doctor.py`
(which of these this host supports).

May import: `runner.model`, `runner.errors`, `runner.settings`.
"""
