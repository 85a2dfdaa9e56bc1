"""Node.js environments whose memory the kernel can merge (RUNNER_KSM=on, decision 080).

Python environments share pages because they are forked from one zygote (decision 072). Node
environments are separate `node` processes, so two of them hold identical pages only where
their heaps were laid out identically, and by default nothing is: the kernel randomises every
mapping's address (ASLR) and V8 draws its heap reservations, hash seed and Math.random state
from its own random generator, so every pointer in every heap page differs between processes.
Measured on 20 idle node processes with KSM merging (decision 080): 8.4 MB PSS each as they
are, 4.9 MB with V8's seed fixed, 2.7 MB with the seed fixed and ASLR off.

So with RUNNER_KSM=on each node environment is started

* marked mergeable: the launching process (the server) carries the mark and node inherits
  it through fork and execve (confinement/ksm.py `mark_launcher`, Linux >= 6.7);
* under `setarch -R` (util-linux: `personality(ADDR_NO_RANDOMIZE)`, inherited through the exec
  of prlimit and node): mappings at the same addresses in every environment;
* with `--random-seed=HOST_V8_SEED`, one value drawn per server process: V8 places its heap
  and derives its string hash seed the same way in every environment of this server.

What that gives up, and why it is acceptable here: ASLR inside a guest protects the guest's
own process from memory-corruption exploits; the sandbox boundary (namespaces, seccomp,
cgroups) never relied on it, and the guest's code is the untrusted party already. The hash
seed is one per server process, unknown outside it (as a Python zygote's hash seed is shared by
its environments). Math.random, which V8 would seed from the fixed seed too (the same sequence
in every environment: colliding ids), is replaced before any function code runs by a
xoshiro128** generator seeded from the kernel's random source in each process
(guest/node_bootstrap.js `reseedMathRandom`, told by RESEED_FLAG).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from dataclasses import dataclass

from runner.confinement import ksm

log = logging.getLogger(__name__)

# V8's --random-seed for this server process's node environments (0 means "random" to V8).
HOST_V8_SEED = secrets.randbelow(2**31 - 2) + 1
# Set in a node environment's environment; the bootstrap pops it and reseeds Math.random.
RESEED_FLAG = "_RUNNER_RESEED_MATH_RANDOM"


@dataclass(frozen=True)
class MemorySharing:
    setarch: str | None  # util-linux setarch, for ADDR_NO_RANDOMIZE; None: ASLR stays on

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` (a node command line: wrappers, then node) started the sharing way."""
        return ([self.setarch, "-R"] if self.setarch else []) + argv

    def v8_flags(self) -> list[str]:
        return [f"--random-seed={HOST_V8_SEED}"]

    def environment(self) -> dict[str, str]:
        return {RESEED_FLAG: "1"}


def find_setarch() -> str | None:
    """util-linux `setarch`, from system directories only (it runs ahead of every guest)."""
    found = shutil.which("setarch", path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return os.path.realpath(found) if found else None


def enable() -> MemorySharing | None:
    """Mark this (launching) process and describe how to start node environments; None, with
    a warning that names the cause, when the kernel cannot pass the mark on to node."""
    problem = ksm.mark_launcher("Node.js")
    if problem is not None:
        log.warning("RUNNER_KSM=on: %s", problem)
        return None
    setarch = find_setarch()
    if setarch is None:
        log.warning("RUNNER_KSM=on: util-linux `setarch` not found; Node.js environments keep "
                    "ASLR and share fewer pages (install util-linux)")
    return MemorySharing(setarch)
