"""A shared token between nodes and clients (`RUNNER_TOKEN`): what lets a node listen beyond
loopback. Compared in constant time. Health checks are exempt: Kubernetes probes and load
balancers call them without credentials, and they reveal nothing but "serving".
"""

from __future__ import annotations

import hmac
import ipaddress

HEADER = "authorization"
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


def bearer(token: str) -> tuple[str, str]:
    return (HEADER, f"Bearer {token}")


def valid(presented: str | None, token: str) -> bool:
    if not token:
        return True
    if not presented or not presented.startswith("Bearer "):
        return False
    return hmac.compare_digest(presented[7:].encode(), token.encode())


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
