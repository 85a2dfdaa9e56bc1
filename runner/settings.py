"""Every `RUNNER_*` environment variable the server reads, in one table, parsed one way.

| variable | type | default | effect |
|---|---|---|---|
| `RUNNER_ADDRESS` | HOST:PORT | `127.0.0.1:50051` | the server the CLI talks to |
| `RUNNER_EXAMPLES` | path | the checkout's `guests/` | what `serve --examples` deploys |
| `RUNNER_CGROUPS` | switch | on | `off` forces the rlimit-only fallback (tests, benchmarks) |
| `RUNNER_CGROUP_PARENT` | path | own cgroup + `/runner` | a delegated cgroup v2 group to use |
| `RUNNER_ISOLATION` | switch | on | `off` runs guests without bubblewrap namespaces |
| `RUNNER_SECCOMP` | switch | on | `off` runs sandboxed guests without the seccomp filter (debugging) |
| `RUNNER_PYTHON_ZYGOTE` | switch | on | `off` spawns a fresh interpreter per Python environment |
| `RUNNER_NODE_PREINIT` | switch | on | `off` keeps Node.js spares launched but not initialised (their handler loads at the cold start) |
| `RUNNER_NODE_WARMUP` | switch | on | `off` skips the warm-up a pre-initialised Node.js spare runs on a built-in no-op handler after its init (decision 074) |
| `RUNNER_ENV_NAMESPACES` | switch | off | `on` gives each environment a zygote forks its own /tmp, PID and IPC namespaces (decision 068: a hostile init can then reach user namespaces for its own children) |
| `RUNNER_KSM` | switch | off | `on` marks Python zygotes' memory (and so their forked environments') and the server's (so Node.js environments', started without ASLR and with one V8 seed per server) mergeable by the kernel's samepage merging (decisions 072, 080; needs /sys/kernel/mm/ksm/run=1, which the server never sets) |
| `RUNNER_FREEZE_IDLE` | switch | on | `off` leaves idle environments running (their background work keeps its CPU) |
| `RUNNER_WASM_FUEL` | switch | off | `on` counts wasm fuel (slower guest code) |
| `RUNNER_WASM_CACHE_DIR` | path | `$XDG_CACHE_HOME/lambda-runner/wasm` | compiled-module cache |
| `RUNNER_DASHBOARD_TOKEN` | secret | unset | required by /ui and /metrics when set (docs/observability.md) |
| `RUNNER_TOKEN` | text | none | cluster token required of clients and peers (`cluster_token()`) |
| `RUNNER_OTLP_ENDPOINT` | URL | unset | export invocation spans over OTLP/HTTP to this collector |

A switch reads `1 on yes true` as on and `0 off no false` as off, in any case; anything else
is refused with the variable named, so a typo never silently picks the default.
`RUNNER_NODE_SNAPSHOT` is not here: it is a *function's* variable, read from its configuration
(environments/node/snapshot.py).

`current()` reads the environment when called, not at import: tests and embedders set these
variables after the package is imported, and every reader runs at start-up or per deploy,
never per invocation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from runner.errors import InvalidParameter

DEFAULT_ADDRESS = "127.0.0.1:50051"
_ON = ("1", "on", "yes", "true")
_OFF = ("0", "off", "no", "false")


def switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """The switch `name` in `environ`: unset or empty is `default`."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise InvalidParameter(name, f"{environ[name]!r} is not a switch; use one of "
                           f"{', '.join(_ON + _OFF)}, or unset it for the default "
                           f"({'on' if default else 'off'})")


def _path(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name) or None


@dataclass(frozen=True)
class Settings:
    address: str
    examples_dir: str | None
    cgroups: bool
    cgroup_parent: str | None
    isolation: bool
    seccomp: bool
    python_zygote: bool
    env_namespaces: bool
    node_preinit: bool
    node_warmup: bool
    freeze_idle: bool
    ksm: bool
    wasm_fuel: bool
    wasm_cache_dir: str | None
    dashboard_token: str | None = None
    otlp_endpoint: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        return cls(
            address=environ.get("RUNNER_ADDRESS") or DEFAULT_ADDRESS,
            examples_dir=_path(environ, "RUNNER_EXAMPLES"),
            cgroups=switch(environ, "RUNNER_CGROUPS", True),
            cgroup_parent=_path(environ, "RUNNER_CGROUP_PARENT"),
            isolation=switch(environ, "RUNNER_ISOLATION", True),
            seccomp=switch(environ, "RUNNER_SECCOMP", True),
            python_zygote=switch(environ, "RUNNER_PYTHON_ZYGOTE", True),
            env_namespaces=switch(environ, "RUNNER_ENV_NAMESPACES", False),
            node_preinit=switch(environ, "RUNNER_NODE_PREINIT", True),
            node_warmup=switch(environ, "RUNNER_NODE_WARMUP", True),
            freeze_idle=switch(environ, "RUNNER_FREEZE_IDLE", True),
            ksm=switch(environ, "RUNNER_KSM", False),
            wasm_fuel=switch(environ, "RUNNER_WASM_FUEL", False),
            wasm_cache_dir=_path(environ, "RUNNER_WASM_CACHE_DIR"),
            dashboard_token=environ.get("RUNNER_DASHBOARD_TOKEN") or None,
            otlp_endpoint=environ.get("RUNNER_OTLP_ENDPOINT") or None,
        )


def current() -> Settings:
    """The settings as the process environment has them now (see the module docstring)."""
    return Settings.from_environ(os.environ)


# Cluster (docs/cluster.md): the shared token between nodes and clients.
def cluster_token(environ: Mapping[str, str] | None = None) -> str:
    """`RUNNER_TOKEN`: required of every call by a server that has it (health checks aside),
    sent by the CLI and by nodes forwarding to each other; a server refuses to listen beyond
    loopback without it. Empty: no token."""
    return ((os.environ if environ is None else environ).get("RUNNER_TOKEN") or "").strip()
