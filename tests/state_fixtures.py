"""The `state` fixture: each store contract test runs once on SQLite (the embedded default)
and once on PostgreSQL (a real server started once per session, a fresh database per test).

    from tests.state_fixtures import pg_server, state  # noqa: F401  (in a test module or conftest)

    def test_something(state):
        reg = state.registry()          # a new handle on the same backing store
        ...

`state.url` is "" for SQLite, else the test's database URL, as `Runner(state=...)` takes it.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import psycopg
import pytest

from tests.real_servers import postgres_server


@pytest.fixture(scope="session")
def pg_server():
    server = postgres_server(logical=False)
    try:
        server.start()
        wait_ready(server.url)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def wait_ready(url: str, timeout_s: float = 30.0) -> None:
    """PostgreSQL listens before it accepts connections ("the database system is starting up")."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fresh_database(server) -> str:
    """A new empty database on `server`; its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    # From template0: CREATE DATABASE fails while any session is on its template, and
    # autovacuum visits template1 now and then ("source database is being accessed").
    for attempt in range(5):
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
            break
        except psycopg.errors.ObjectInUse:
            if attempt == 4:
                raise
            time.sleep(0.2)
    return server.url.rsplit("/", 1)[0] + "/" + name


class StateUnderTest:
    def __init__(self, kind: str, data_dir: str, url: str = "") -> None:
        self.kind, self.data_dir, self.url = kind, data_dir, url
        self._open: list = []

    def _keep(self, store):
        self._open.append(store)
        return store

    def registry(self, data_dir: str | None = None):
        """A registry on this state; `data_dir` gives a node its own local code cache."""
        if self.url:
            from runner.storage.postgres.functions import PostgresRegistry

            return self._keep(PostgresRegistry(self.url, data_dir or self.data_dir))
        from runner.storage.functions import SQLiteRegistry

        return self._keep(SQLiteRegistry(self.data_dir))

    def aliases(self, registry):
        """The alias store on `registry` (a handle from registry()), as open_state pairs them."""
        if self.url:
            from runner.storage.postgres.aliases import PostgresAliasStore

            return PostgresAliasStore(registry)
        from runner.storage.aliases import SQLiteAliasStore

        return SQLiteAliasStore(registry)

    def roles(self, registry=None):
        """A role store; on PostgreSQL in `registry`'s database (a new registry handle if none)."""
        if self.url:
            from runner.storage.postgres.roles import PostgresRoleStore

            return self._keep(PostgresRoleStore((registry or self.registry()).db))
        from runner.storage.roles import SQLiteRoleStore

        os.makedirs(self.data_dir, exist_ok=True)
        return self._keep(SQLiteRoleStore(self.data_dir))

    def layers(self, registry=None, data_dir: str | None = None):
        """A layer store; on PostgreSQL in `registry`'s database and blob store (a new
        registry handle if none), extracting into `data_dir` (a node's own cache)."""
        data_dir = data_dir or self.data_dir
        os.makedirs(data_dir, exist_ok=True)
        if self.url:
            from runner.storage.postgres.layers import PostgresLayerStore

            registry = registry or self.registry(data_dir)
            return self._keep(PostgresLayerStore(registry.db, registry.blobs, data_dir))
        from runner.storage.layers import SQLiteLayerStore

        return self._keep(SQLiteLayerStore(data_dir))

    def events(self, node_id: str = "node-a"):
        if self.url:
            from runner.storage.postgres.events import PostgresEventStore

            return self._keep(PostgresEventStore(self.url, node_id))
        from runner.storage.events import EventStore

        return self._keep(EventStore(self.data_dir))

    def routes(self):
        if self.url:
            from runner.storage.postgres.routes import PostgresRouteStore

            return self._keep(PostgresRouteStore(self.url))
        from runner.storage.routes import RouteStore

        return self._keep(RouteStore(self.data_dir))

    def push(self):
        """A push store (triggers, topics): push.db, or the shared tables."""
        if self.url:
            from runner.storage.postgres.push import PostgresPushStore

            return self._keep(PostgresPushStore(self.url))
        from runner.storage.push import SQLitePushStore

        return self._keep(SQLitePushStore(self.data_dir))

    def metric_series(self, node_id: str = "node-a"):
        """A minute-series store writing as `node_id` (PostgreSQL; one node's metrics.db)."""
        if self.url:
            from runner.storage.postgres.metric_series import PostgresMetricSeries

            return self._keep(PostgresMetricSeries(self.url, node_id))
        from runner.storage.metric_series import SQLiteMetricSeries

        os.makedirs(self.data_dir, exist_ok=True)
        return self._keep(SQLiteMetricSeries(self.data_dir))

    def close(self) -> None:
        for store in reversed(self._open):
            try:
                store.close()
            except Exception:
                pass


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path):
    if request.param == "sqlite":
        s = StateUnderTest("sqlite", str(tmp_path / "data"))
    else:
        server = request.getfixturevalue("pg_server")
        s = StateUnderTest("postgresql", str(tmp_path / "data"), fresh_database(server))
    yield s
    s.close()


@pytest.fixture
def pg_state(pg_server, tmp_path):
    """PostgreSQL only: for what only a shared state has (several nodes on one database)."""
    s = StateUnderTest("postgresql", str(tmp_path / "data"), fresh_database(pg_server))
    yield s
    s.close()
