"""The invoke path: `Runner` (`runner.py`: its stores, management and lifecycle), with the
invoke path mixed in (`invoke_path.py`: resolve a version, lease an environment from the pool,
invoke it and make the invocation's record) and the Lambda resources (`lambda_resources.py`:
versions, aliases, layers, tags, roles); the record's log block and its writing
(`log_block.py`); the Lambda context cache (`context.py`); code as deploy callers give
it (`code_input.py`); and the asynchronous dispatcher (`async_dispatcher.py`: retries, event
age, destinations, dead letters).

May import: everything below it (`runner.storage`, `runner.pool`, `runner.environments`,
`runner.confinement`, `runner.model`, `runner.errors`, `runner.settings`).
"""
