"""Event source mappings, the pull model: the runner reads a stream, queue or table and
invokes a function with batches of records (docs/event-sources.md).

`base.py` (the Source protocol and Record), `poller.py` (one per enabled mapping: batching,
filters, lanes, retries, bisect, destinations), one module per broker (`redis_stream.py`,
`nats_jetstream.py`, `postgres_table.py`), `registry.py` (type -> source), `shapes.py`
(Lambda's Kinesis / SQS / DynamoDB Streams event shapes), `filters.py` (FilterCriteria),
`lambda_shape.py` (mappings as Lambda's API JSON), `manager.py` (CRUD + running pollers).

Layer 5.5: may import runner.invocation and below; never runner.service or runner.cli, nor
the other event packages.
"""
