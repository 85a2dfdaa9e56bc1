"""Object-store triggers (S3's bucket notifications to Lambda): `rules.py` (event types,
prefix/suffix filters, S3's overlap refusal), `records.py` (S3 notification bodies and the
SeaweedFS filer webhook, both turned into S3 `Records[]`), `service.py` (`Triggers`: manage
triggers, turn a pushed notification into one async invocation per matching record).

May import: runner.model, runner.errors, runner.settings, runner.storage, runner.invocation.
"""
