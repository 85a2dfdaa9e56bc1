"""The function store's protocol: functions, their immutable versions, and where code lives.

Data model (Lambda's):

* A *function* is a name with a `$LATEST` pointer.
* Every deploy of code or configuration creates a new immutable *revision* (config + code
  digest); `$LATEST` moves to it. Revisions are numbered across the whole registry and never
  reused, so they key pools and snapshots safely.
* `publish()` freezes the current `$LATEST` revision as version "1", "2", ...; published
  versions never move. *Aliases* name a published version (the table exists; the API to manage
  them comes later without a schema change).
* Every change of a function (a deploy, a publish) gives it a new *RevisionId*, Lambda's
  optimistic-concurrency token: a UUID, stored with the revision so that it survives restarts.
  A deploy or publish given a RevisionId applies only if it is still the function's
  (PreconditionFailed otherwise); a caller that holds `updating(name)` for the length of its
  update makes a concurrent update of the same function fail at once with ResourceConflict
  (docs/decisions/046-optimistic-concurrency.md).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Protocol

from runner.model import FunctionConfig, FunctionVersion


class Registry(Protocol):
    def deploy(
        self,
        name: str,
        config: FunctionConfig | Callable[[FunctionConfig | None], FunctionConfig],
        code: bytes | None,
        *,
        revision_id: str | None = None,
    ) -> FunctionVersion:
        """Create `name` or update it; `code=None` keeps the current code (updates only).
        `config` is the whole configuration, or a merge called under the registry's lock with
        the current one (None when creating), so that concurrent partial updates never
        overwrite each other. With `revision_id`, the deploy applies only if it is the
        function's current RevisionId (PreconditionFailed). Raises InvalidParameter /
        InvalidCodePackage / PreconditionFailed and then changes nothing."""

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        """The version a qualifier ("", "$LATEST", "3", an alias) names. ResourceNotFound."""

    def list_functions(self) -> list[FunctionVersion]:
        """The $LATEST version of every function, by name."""

    def list_versions(self, name: str) -> list[FunctionVersion]:
        """$LATEST and every published version of `name`."""

    def publish(self, name: str, *, revision_id: str | None = None) -> FunctionVersion:
        """Freeze $LATEST as the next version number (returns the existing one if unchanged).
        A new version changes the function's RevisionId; `revision_id` as for deploy()."""

    def revision_id(self, version: FunctionVersion) -> str:
        """The RevisionId of the state `version` shows: for $LATEST the function's current one
        unless it changed since `version` was read (then an older, stale id). ResourceNotFound
        once the function is deleted."""

    def updating(self, name: str) -> AbstractContextManager[None]:
        """Hold `name` as "an update is in progress" for a `with` block; ResourceConflict at
        once if another block holds it (in this process)."""

    def delete_version(self, name: str, version: str) -> FunctionVersion:
        """Remove one published version ("3"); returns it. ResourceNotFound if there is none,
        InvalidParameter for a qualifier that is no version number."""

    def delete(self, name: str) -> list[FunctionVersion]:
        """Remove the function and all its versions; returns what was removed."""

    def close(self) -> None:
        """Close the database."""


# --------------------------------------------------------------------------- push events
# (issue 19: schedules, object-store triggers, topics; docs/events.md)


class ScheduleStore(Protocol):
    """Schedules and where each stands (its next undelivered slot). SQLite: schedules.py;
    contract: tests/unit/storage/test_schedule_store.py."""

    def create(self, s, next_slot: float | None, now: float):
        """Store a new schedule at `next_slot`; ResourceConflict if the name exists."""

    def replace(self, s, next_slot: float | None, now: float):
        """New settings and next slot for an existing schedule; ResourceNotFound."""

    def get(self, name: str):
        """The schedule (with its next_slot); ResourceNotFound."""

    def list(self) -> list:
        """Every schedule, by name."""

    def due(self, now: float) -> list:
        """Enabled schedules whose next slot is at or before `now`, earliest first."""

    def next_due_at(self) -> float | None:
        """The earliest next slot of an enabled schedule (None: nothing to fire)."""

    def advance(self, name: str, slot: float, next_slot: float | None,
                dropped: str | None = None, now: float = 0.0) -> bool:
        """Compare-and-set the next slot from `slot` to `next_slot`, recording `slot` as
        dropped with that reason in the same transaction; False if it was not at `slot`."""

    def dropped(self, name: str) -> list:
        """The slots of `name` that were dropped, oldest first."""

    def delete(self, name: str):
        """Remove the schedule and its dropped-slot records; ResourceNotFound."""

    def close(self) -> None:
        """Close the store."""


class PushStore(Protocol):
    """Object-store triggers and topics with their subscriptions. SQLite: push.py;
    PostgreSQL: postgres/push.py; contract: tests/unit/storage/test_push_store.py.

    `adding()` is a context manager holding the store for a check-then-add (the trigger
    overlap check): one holder at a time, across the nodes of a cluster."""

    def adding(self) -> AbstractContextManager[None]:
        """Hold the store for a check-then-add; re-entrant within one thread."""

    def add_trigger(self, t) -> None:
        """Store a trigger; ResourceConflict if the name exists."""

    def triggers(self, bucket: str | None = None) -> list:
        """Triggers (of one bucket), by name."""

    def get_trigger(self, name: str):
        """ResourceNotFound if unknown."""

    def delete_trigger(self, name: str):
        """Remove and return it; ResourceNotFound."""

    def create_topic(self, name: str, now: float) -> bool:
        """Create a topic; False if it existed (creating is idempotent, as in SNS)."""

    def topics(self) -> list[str]:
        """Topic names."""

    def delete_topic(self, name: str) -> None:
        """Remove a topic and its subscriptions; ResourceNotFound."""

    def subscribe(self, sub):
        """Add a subscription to an existing topic (ResourceNotFound otherwise) and return
        it; if the function (with that qualifier) is already subscribed, return that one
        instead (ResourceConflict if its filter policy differs): push.existing_subscription."""

    def subscriptions(self, topic: str) -> list:
        """The topic's subscriptions; ResourceNotFound for an unknown topic."""

    def unsubscribe(self, subscription_id: str):
        """Remove a subscription; ResourceNotFound."""

    def close(self) -> None:
        """Close the store."""
