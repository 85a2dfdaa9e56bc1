"""Topics (SNS's model): `filter_policy.py` (SNS subscription filter policies on message
attributes), `service.py` (`Topics`: create, subscribe, publish; one async invocation per
matching subscription with an SNS-shaped event).

May import: runner.model, runner.errors, runner.settings, runner.storage, runner.invocation.
"""
