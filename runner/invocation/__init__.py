"""The invoke path: `Runner` (`runner.py`), which resolves a version, leases an environment
from the pool, invokes it and makes the invocation's record; the record's log block and its
writing (`log_block.py`); the Lambda context cache (`context.py`); code as deploy callers give
it (`code_input.py`); and the asynchronous dispatcher (`async_dispatcher.py`: retries, event
age, destinations, dead letters).

May import: everything below it (`runner.storage`, `runner.pool`, `runner.environments`,
`runner.confinement`, `runner.model`, `runner.errors`, `runner.settings`).
"""
