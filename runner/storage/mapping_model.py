"""An event source mapping: which broker a function reads, and Lambda's settings for how.

`Mapping` is what the store keeps and the pollers read; `Mapping.create(...)` validates every
setting against Lambda's ranges and raises InvalidParameter naming the field (Lambda's
InvalidParameterValueException). Field names follow Lambda's CreateEventSourceMapping
(sources/lambda_shape.py maps them one to one).

Defaults differ from Lambda's in one place, on purpose: Lambda's stream mappings retry a
failing batch forever (-1) by default, so one poison record blocks its shard until it ages out
of the stream. Here MaximumRetryAttempts defaults to 3 and MaximumRecordAgeInSeconds to
Lambda's longest (604800): a poison record reaches the failure destination (or is dropped,
when none is configured, and the log says so) instead of blocking. -1 asks for Lambda's
"forever" (docs/decisions/050-event-source-mappings.md).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from runner.errors import InvalidParameter

SOURCE_TYPES = {
    # type: (URL schemes, the Lambda event shape its records are delivered in)
    "redis-stream": (("redis", "rediss"), "kinesis"),
    "nats-jetstream": (("nats", "tls"), "sqs"),
    "postgres-table": (("postgresql", "postgres"), "dynamodb"),
}
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
STATES = ("Creating", "Enabling", "Enabled", "Disabling", "Disabled", "Updating", "Deleting")
DEFAULT_BATCH = {"redis-stream": 100, "nats-jetstream": 10, "postgres-table": 100}
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_AGE_S = 604800
DESTINATION_KINDS = ("function", "stream", "subject", "table")


@dataclass(frozen=True)
class Mapping:
    uuid: str
    function: str
    source_type: str
    endpoint: str
    name: str  # the stream, subject or table
    qualifier: str = ""
    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "LATEST"
    starting_timestamp: float | None = None
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    max_retries: int = DEFAULT_MAX_RETRIES  # -1: until the record's age runs out
    max_record_age_s: int = DEFAULT_MAX_AGE_S  # -1: no limit
    on_failure: str = ""  # "function:NAME" | "stream:NAME" | "subject:NAME" | "table:NAME" | ""
    parallelization: int = 1
    max_concurrency: int | None = None
    filters: tuple[str, ...] = ()  # Lambda FilterCriteria patterns, each a JSON string
    enabled: bool = True
    state: str = "Creating"
    state_reason: str = "USER_INITIATED"
    last_result: str = "No records processed"
    created_at: float = field(default_factory=time.time)
    last_modified: float = field(default_factory=time.time)

    @property
    def shape(self) -> str:
        return SOURCE_TYPES[self.source_type][1]

    @classmethod
    def create(cls, **settings: Any) -> "Mapping":
        settings.setdefault("uuid", str(uuidlib.uuid4()))
        if "batch_size" not in settings or settings["batch_size"] is None:
            settings["batch_size"] = DEFAULT_BATCH.get(settings.get("source_type", ""), 100)
        m = cls(**{k: v for k, v in settings.items() if v is not None})
        m.validate()
        return m

    def with_changes(self, **changes: Any) -> "Mapping":
        """A copy with the given settings changed (None leaves one as it is), validated. The
        source (type, endpoint, name) and the starting position cannot change, as on Lambda."""
        for fixed in ("source_type", "endpoint", "name", "starting_position", "starting_timestamp"):
            if changes.get(fixed) is not None and changes[fixed] != getattr(self, fixed):
                raise InvalidParameter(fixed, "cannot change on an existing mapping; delete it and "
                                              "create a new one")
        changes = {k: v for k, v in changes.items() if v is not None}
        m = dataclasses.replace(self, **changes, last_modified=time.time())
        m.validate()
        return m

    def validate(self) -> None:
        if self.source_type not in SOURCE_TYPES:
            raise InvalidParameter("source_type", f"{self.source_type!r} is not one of "
                                                  f"{', '.join(SOURCE_TYPES)}")
        schemes = SOURCE_TYPES[self.source_type][0]
        url = urlparse(self.endpoint)
        if url.scheme not in schemes or not url.hostname:
            raise InvalidParameter("endpoint", f"{redacted(self.endpoint)!r} is not a {self.source_type} URL; "
                                               f"use {schemes[0]}://HOST:PORT")
        try:
            url.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise InvalidParameter("endpoint", f"{redacted(self.endpoint)!r} has an invalid port") from None
        if not self.name or len(self.name) > 256 or any(c.isspace() for c in self.name):
            raise InvalidParameter("name", "the stream, subject or table name must be 1-256 "
                                           "characters without spaces")
        if not self.function:
            raise InvalidParameter("function", "name the function the mapping invokes")
        _range("batch_size", self.batch_size, 1, 10000)
        _range("batching_window_s", self.batching_window_s, 0, 300)
        if self.starting_position not in STARTING_POSITIONS:
            raise InvalidParameter("starting_position", f"{self.starting_position!r} is not one of "
                                                        f"{', '.join(STARTING_POSITIONS)}")
        if self.starting_position == "AT_TIMESTAMP" and self.starting_timestamp is None:
            raise InvalidParameter("starting_timestamp", "required with AT_TIMESTAMP (unix seconds)")
        if self.max_retries != -1:
            _range("max_retries", self.max_retries, 0, 10000, "or -1 for no limit")
        if self.max_record_age_s != -1:
            _range("max_record_age_s", self.max_record_age_s, 60, 604800, "or -1 for no limit")
        _range("parallelization", self.parallelization, 1, 10)
        if self.max_concurrency is not None:
            _range("max_concurrency", self.max_concurrency, 2, 1000)
        if self.on_failure:
            kind, _, target = self.on_failure.partition(":")
            if kind not in DESTINATION_KINDS or not target:
                raise InvalidParameter("on_failure", f"{self.on_failure!r}: use function:NAME, or a "
                                                     "dead-letter stream:NAME (redis), subject:NAME "
                                                     "(nats) or table:NAME (postgres)")
            native = {"redis-stream": "stream", "nats-jetstream": "subject", "postgres-table": "table"}
            if kind != "function" and kind != native[self.source_type]:
                raise InvalidParameter("on_failure", f"a {self.source_type} mapping's dead letters go "
                                                     f"to {native[self.source_type]}:NAME or function:NAME")
        for i, pattern in enumerate(self.filters):
            try:
                doc = json.loads(pattern)
            except ValueError:
                raise InvalidParameter(f"filters[{i}]", "is not JSON; give an event pattern such as "
                                                        '{"data": {"kind": ["order"]}}') from None
            if not isinstance(doc, dict):
                raise InvalidParameter(f"filters[{i}]", "an event pattern is a JSON object")
        if self.state not in STATES:
            raise InvalidParameter("state", f"{self.state!r} is not a mapping state")

    def to_row(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["filters"] = list(self.filters)
        return d

    @classmethod
    def from_row(cls, d: dict[str, Any]) -> "Mapping":
        d = dict(d)
        d["filters"] = tuple(d.get("filters") or ())
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def redacted(url: str) -> str:
    """The URL with its password replaced by ****: what listings, states and logs show (the
    stored mapping keeps it, the poller needs it)."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":****@", 1)
    return parsed._replace(netloc=netloc).geturl()


def _range(name: str, value: Any, lo: float, hi: float, extra: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        tail = f" {extra}" if extra else ""
        raise InvalidParameter(name, f"{value!r} is outside {lo}..{hi}; pick a value in that range{tail}")
