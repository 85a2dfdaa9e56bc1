"""Host side of per-environment namespaces for zygote children (issue 24; decision 068).

With the switch on (`RUNNER_ENV_NAMESPACES`, default on) and the bubblewrap sandbox working,
each Python environment forked from a version's zygote gets its own user, mount, PID and IPC
namespaces, its own /tmp and /dev/shm, and a Landlock scope on abstract Unix sockets and
signals (guest/python_envns.py does it, in the child). The host's part, here:

* a random clone cookie per zygote, baked into the zygote's seccomp filter
  (confinement/seccomp.zygote_program) and sent to the zygote only after its init returned,
  so function code that runs during init cannot create namespaces;
* the `ns` message the zygote gets once it is ready: the cookie, the guest filter each child
  loads on top of the zygote's, and the size of each child's /tmp.

Off (the switch, isolation off, or a host where the zygote's probe child fails: no
unprivileged user namespaces), environments share the zygote's sandbox as before
(docs/decisions/007), and doctor/the log say so.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from runner import settings
from runner.confinement import namespaces, seccomp
from runner.confinement.limits import LimitSpec
from runner.model import FunctionVersion


@dataclass(frozen=True)
class Plan:
    """Per-environment namespaces for one zygote."""

    cookie: int
    zygote_filter: bytes | None  # None where guests run without seccomp (RUNNER_SECCOMP=off)

    def message(self, version: FunctionVersion, seq: int, address_space: bool) -> dict:
        """The zygote's `ns` request (guest/python_zygote.py answers ns_ready or ns_error)."""
        spec = LimitSpec.for_version(version, address_space=address_space)
        return {"t": "ns", "seq": seq, "cookie": self.cookie,
                "filter": seccomp.program() if self.zygote_filter is not None else b"",
                "tmp_bytes": spec.tmp_bytes}


def problem() -> str | None:
    """Why environments of one version share their zygote's namespaces here, or None."""
    if not settings.current().env_namespaces:
        return "disabled by RUNNER_ENV_NAMESPACES=off"
    return namespaces.problem()


def plan() -> Plan | None:
    """A Plan for a new zygote, or None when per-environment namespaces are off."""
    if problem() is not None:
        return None
    # Below 2**63 so that both msgpack codecs carry it as a plain unsigned integer; never 0.
    cookie = secrets.randbits(63) | 1
    zygote_filter = seccomp.zygote_program(cookie) if namespaces.seccomp_problem() is None else None
    return Plan(cookie, zygote_filter)
