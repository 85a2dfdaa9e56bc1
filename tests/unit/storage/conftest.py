"""Store contract tests run on SQLite and PostgreSQL: the `state` fixture (tests/state_fixtures.py)."""

from tests.state_fixtures import pg_server, pg_state, state  # noqa: F401
