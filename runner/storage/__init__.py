"""Durable state, each store behind an interface: functions, versions and aliases
(`functions.py`, protocol in `base.py`), code packages (`code.py`), logs (`logs.py`), HTTP
routes (`routes.py`), the async event queue and dead letters (`events.py`), event source mappings
with their checkpoints and retry counts (`mappings.py`, the model in `mapping_model.py`), and for
Lambda's management API (issue 20) aliases (`aliases.py`), layers (`layers.py`), execution
roles (`roles.py`) and tags (`tags.py`); `sqlite.py` holds the SQLite helpers they share. A
cluster shares code through a blob store (`blobs.py`: PostgreSQL in `postgres/blobs.py`, S3 in
`s3_blobs.py`).

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.sigv4_signing`.
"""
