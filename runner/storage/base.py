"""The function store's protocol: functions, their immutable versions, and where code lives.

Data model (Lambda's):

* A *function* is a name with a `$LATEST` pointer.
* Every deploy of code or configuration creates a new immutable *revision* (config + code
  digest); `$LATEST` moves to it. Revisions are numbered across the whole registry and never
  reused, so they key pools and snapshots safely.
* `publish()` freezes the current `$LATEST` revision as version "1", "2", ...; published
  versions never move. *Aliases* name a published version (the table exists; the API to manage
  them comes later without a schema change).
"""

from __future__ import annotations

from typing import Protocol

from runner.model import FunctionConfig, FunctionVersion


class Registry(Protocol):
    def deploy(self, name: str, config: FunctionConfig, code: bytes | None) -> FunctionVersion:
        """Create `name` or update it; `code=None` keeps the current code (updates only).
        Raises InvalidParameter / InvalidCodePackage and then changes nothing."""

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        """The version a qualifier ("", "$LATEST", "3", an alias) names. ResourceNotFound."""

    def list_functions(self) -> list[FunctionVersion]:
        """The $LATEST version of every function, by name."""

    def list_versions(self, name: str) -> list[FunctionVersion]:
        """$LATEST and every published version of `name`."""

    def publish(self, name: str) -> FunctionVersion:
        """Freeze $LATEST as the next version number (returns the existing one if unchanged)."""

    def delete(self, name: str) -> list[FunctionVersion]:
        """Remove the function and all its versions; returns what was removed."""

    def close(self) -> None:
        """Close the database."""
