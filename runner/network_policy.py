"""A function's egress policy (`network`, issue 19; decision 055): what the configuration
may say and what it means. Parsed here when a configuration is validated (model.py) and
enforced by confinement/egress.py at the sandbox's gate."""

from __future__ import annotations

from runner.errors import InvalidParameter


def parse_network_policy(policy: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """("", ()) for the legacy flag, ("none"|"full", ()) or ("allow", ((ip, port), ...)).
    Hosts are IPv4 literals (localhost means 127.0.0.1): the guest has no DNS of its own under
    an allow list, so a name could not be resolved inside anyway."""
    if policy in ("", "none", "full"):
        return policy, ()
    if not isinstance(policy, str) or not policy.startswith("allow="):
        raise InvalidParameter("network", f"{policy!r} is not none, full or "
                               "allow=IP:PORT[,IP:PORT...]")
    out = []
    for item in policy[len("allow="):].split(","):
        host, _, port = item.strip().rpartition(":")
        host = "127.0.0.1" if host == "localhost" else host
        parts = host.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 for p in parts) or \
                not port.isdigit() or not 1 <= int(port) <= 65535:
            raise InvalidParameter("network", f"{item!r} is not IP:PORT (an IPv4 address or "
                                   "localhost, and a port 1-65535), e.g. allow=127.0.0.1:9000")
        out.append((host, int(port)))
    return "allow", tuple(dict.fromkeys(out))

