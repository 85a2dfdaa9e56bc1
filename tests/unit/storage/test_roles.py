"""The RoleStore contract (runner/storage/roles.py, storage/postgres/roles.py), on SQLite and
PostgreSQL alike (the `state` fixture, tests/state_fixtures.py), and a rotation reaching the
versions another node has cached."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile

import pytest

from runner.errors import InvalidParameter, ResourceConflict, ResourceNotFound
from runner.model import FunctionConfig
from runner.storage.roles import SQLiteRoleStore, role_name


@pytest.fixture
def roles(state):
    return state.roles()


def test_create_find_rotate_delete(roles):
    r = roles.create("reader", "AKIA1", "s3cr3t", endpoint_url="http://127.0.0.1:8333")
    assert r.generation == 1 and "s3cr3t" not in repr(r)
    assert r.environment() == {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
                               "AWS_ENDPOINT_URL": "http://127.0.0.1:8333"}
    assert roles.find("arn:aws:iam::000000000000:role/service/reader") == r
    assert roles.find("nobody") is None
    with pytest.raises(ResourceConflict):
        roles.create("reader", "AKIA2", "x")
    r2 = roles.update("reader", access_key_id="AKIA2", session_token="tok")
    assert r2.generation == 2 and r2.secret_access_key == "s3cr3t"
    assert roles.find("reader").environment()["AWS_SESSION_TOKEN"] == "tok"  # cache follows
    assert [x.name for x in roles.list()] == ["reader"]
    roles.delete("reader")
    assert roles.find("reader") is None
    with pytest.raises(ResourceNotFound):
        roles.get("reader")


@pytest.mark.parametrize("args", [
    ("bad name", "a", "b"), ("ok", "", "b"), ("ok", "a", "with space"),
])
def test_refuses_bad_fields(roles, args):
    with pytest.raises(InvalidParameter):
        roles.create(*args)
    with pytest.raises(InvalidParameter):
        roles.create("ok2", "a", "b", endpoint_url="ftp://x")


def test_database_is_owner_only(tmp_path):
    store = SQLiteRoleStore(str(tmp_path))
    store.create("r", "a", "b")
    for name in os.listdir(tmp_path):
        if name.startswith("roles.db"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) & 0o077 == 0, name
    store.close()


def test_role_name():
    assert role_name("arn:aws:iam::123456789012:role/path/x") == "x" and role_name("x") == "x"


def test_update_refuses_unknown_roles_and_fields(roles):
    with pytest.raises(ResourceNotFound):
        roles.update("nobody", access_key_id="x")
    roles.create("r", "a", "b")
    with pytest.raises(InvalidParameter, match="colour"):
        roles.update("r", colour="blue")
    with pytest.raises(InvalidParameter, match="endpoint_url"):
        roles.update("r", endpoint_url="ftp://x")
    assert roles.get("r").generation == 1  # refused changes change nothing
    with pytest.raises(ResourceNotFound):
        roles.delete("nobody")


def test_a_rotation_on_one_node_reaches_another_nodes_versions_within_2_s(pg_state, tmp_path):
    """Node B derives a version's role variables (as Runner._derived does) and caches the
    version; node A rotates the role; B's next resolves carry the new key within 2 s."""
    roles_a = pg_state.roles()
    roles_b = pg_state.roles()

    def derived(config):
        role = roles_b.find(config.role) if config.role else None
        return {} if role is None else {"role_env": role.environment(),
                                        "role_generation": role.generation}

    from runner.storage.postgres.functions import PostgresRegistry

    reg_a = pg_state.registry(str(tmp_path / "a"))
    reg_b = pg_state._keep(PostgresRegistry(pg_state.url, str(tmp_path / "b"), derived=derived))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c): return 1\n")
    reg_a.deploy("fn", FunctionConfig("python", "app.handler", role="reader"), buf.getvalue())
    assert reg_b.resolve("fn").role_env == {}  # no such role yet
    roles_a.create("reader", "AKIA1", "one")
    wait_until(lambda: reg_b.resolve("fn").role_env.get("AWS_ACCESS_KEY_ID") == "AKIA1",
               "the new role")
    before = reg_b.resolve("fn")
    roles_a.update("reader", access_key_id="AKIA2", secret_access_key="two")
    wait_until(lambda: reg_b.resolve("fn").role_env.get("AWS_SECRET_ACCESS_KEY") == "two",
               "the rotated credentials")
    after = reg_b.resolve("fn")
    assert after.role_generation == 2 and after.key != before.key  # new environments
    roles_a.delete("reader")
    wait_until(lambda: reg_b.resolve("fn").role_env == {}, "the delete")


def wait_until(predicate, what: str, within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, f"node B still does not see {what} after {within_s} s"
        time.sleep(0.05)
