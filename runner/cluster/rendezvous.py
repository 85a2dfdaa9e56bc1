"""Rendezvous (highest-random-weight) hashing: every node ranks the nodes for a key the same
way, from the key and the node ids alone, so all nodes agree on a function's home node without
talking, and when a node joins or leaves only the functions whose top choice it is move
(1/N of them), not all of them as with `hash(key) % N`.

Spilling over in rank order (router.py) is OpenWhisk's sharding balancer's answer to a busy
home: the next node in the function's own order, so a function's overflow also lands on the
same few nodes and finds their warm environments.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

T = TypeVar("T")


def weight(key: str, node_id: str) -> int:
    # blake2b: fast, stable across processes and versions (Python's hash() is salted per process).
    digest = hashlib.blake2b(f"{node_id}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(key: str, nodes: Sequence[T], node_id=lambda n: n.id) -> list[T]:
    """`nodes` in `key`'s preference order: its home node first."""
    return sorted(nodes, key=lambda n: weight(key, node_id(n)), reverse=True)
