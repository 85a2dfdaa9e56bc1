from tests.state_fixtures import pg_server  # noqa: F401  (PostgreSQL for the cluster tests)
