"""The RoleStore contract (runner/storage/roles.py), run against every implementation."""

from __future__ import annotations

import os
import stat

import pytest

from runner.errors import InvalidParameter, ResourceConflict, ResourceNotFound
from runner.storage.roles import SQLiteRoleStore, role_name

IMPLEMENTATIONS = ["sqlite"]


@pytest.fixture(params=IMPLEMENTATIONS)
def roles(request, tmp_path):
    store = SQLiteRoleStore(str(tmp_path))
    yield store
    store.close()


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
