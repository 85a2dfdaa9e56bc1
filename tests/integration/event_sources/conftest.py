"""Fixtures of the event source tests: the real brokers (tests/real_servers.py) and an
embedded runner with its pollers (helpers.py)."""

from tests.integration.event_sources.helpers import es_server, sources  # noqa: F401
from tests.real_servers import nats, postgres, redis  # noqa: F401
