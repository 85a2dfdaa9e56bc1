"""Helpers for tests of asynchronous invocation: the recorder guest and waiting for its lines."""

from __future__ import annotations

import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDER = os.path.join(HERE, "guests", "recorder")
WAIT_S = 60.0  # an upper bound for "eventually", never a performance expectation


def records(record_dir: str, function: str) -> list[tuple[str, object]]:
    """(request id, event) for every invocation the recorder guest saw, in order."""
    path = os.path.join(record_dir, f"{function}.log")
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            rid, _, event = line.rstrip("\n").partition(" ")
            out.append((rid, json.loads(event)))
    return out


def wait_for(predicate, what: str, timeout: float = WAIT_S):
    """Poll `predicate` until it returns a truthy value; fail the test naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
