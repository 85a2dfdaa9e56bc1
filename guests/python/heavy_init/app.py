"""Module-level work runs once per environment (the init phase); warm invocations reuse it."""
import hashlib
import time

_t0 = time.perf_counter()
# ~50 ms of CPU at import: a stand-in for loading a model or a big dependency tree.
TABLE = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(100_000)]
INIT_MS = (time.perf_counter() - _t0) * 1000
CALLS = 0


def handler(event, context):
    global CALLS
    CALLS += 1
    return {"init_ms": round(INIT_MS, 1), "calls": CALLS, "entries": len(TABLE)}
