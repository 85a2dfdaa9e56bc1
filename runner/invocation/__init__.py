"""The invoke path: `Runner` (`runner.py`), which resolves a version, leases an environment
from the pool, invokes it and writes the log block and report; and the asynchronous dispatcher
(`async_dispatcher.py`: retries, event age, destinations, dead letters).

May import: everything below it (`runner.storage`, `runner.pool`, `runner.environments`,
`runner.confinement`, `runner.model`, `runner.errors`, `runner.settings`).
"""
