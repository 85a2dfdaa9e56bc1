"""Schedules (EventBridge Scheduler's model): `expressions.py` parses cron/rate/at and computes
fire times in a time zone; `events.py` builds the "Scheduled Event" a handler receives;
`scheduler.py` is the durable thread that fires each slot once through the async queue.

May import: runner.model, runner.errors, runner.settings, runner.storage, runner.invocation.
"""
