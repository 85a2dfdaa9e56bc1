"""The code blob store's contract (runner/storage/blobs.py), once over PostgreSQL (the
code_blobs table) and once over S3 (a real SeaweedFS that checks SigV4 signatures)."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile

import boto3
import pytest

from runner.errors import BlobNotFound, CorruptBlob, InternalError, InvalidParameter
from runner.model import FunctionConfig
from runner.storage.blobs import ReadThrough
from runner.storage.postgres.blobs import PostgresBlobStore
from runner.storage.s3_blobs import S3BlobStore, S3Location
from tests.seaweedfs import seaweedfs  # noqa: F401
from tests.state_fixtures import fresh_database

BUCKET = "runner-blobs-test"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_env(server, secret: str | None = None) -> dict:
    key, real_secret = server.credentials
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret or real_secret}


class S3Under:
    """An S3 store under a prefix of its own, and a raw boto3 client to damage it with."""

    def __init__(self, server) -> None:
        self.prefix = "t-" + uuid.uuid4().hex[:8]
        self.store = S3BlobStore.open_store(S3Location.parse(
            f"s3://{BUCKET}/{self.prefix}", server.url, s3_env(server)))
        self.raw = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                                aws_access_key_id=server.credentials[0],
                                aws_secret_access_key=server.credentials[1])

    def corrupt(self, sha256: str, data: bytes) -> None:
        self.raw.put_object(Bucket=BUCKET, Key=f"{self.prefix}/{sha256}", Body=data)

    def close(self) -> None:
        self.raw.close()


class PostgresUnder:
    def __init__(self, pg_server) -> None:
        self.store = PostgresBlobStore(fresh_database(pg_server))
        self.db = self.store.db

    def corrupt(self, sha256: str, data: bytes) -> None:
        self.db.execute("UPDATE code_blobs SET data = %s WHERE sha256 = %s", (data, sha256))

    def close(self) -> None:
        self.store.close()


class ReadThroughUnder:
    """S3 in front of the database's table, as `--code-store` opens it (state.py)."""

    def __init__(self, server, pg_server) -> None:
        self.s3, self.pg = S3Under(server), PostgresUnder(pg_server)
        self.store = ReadThrough(self.s3.store, self.pg.store)

    def corrupt(self, sha256: str, data: bytes) -> None:
        self.s3.corrupt(sha256, data)

    def close(self) -> None:
        self.s3.close()
        self.pg.close()


@pytest.fixture(params=["postgresql", "s3", "s3-over-postgresql"])
def under(request):
    if request.param == "s3":
        u = S3Under(request.getfixturevalue("seaweedfs"))
    elif request.param == "postgresql":
        u = PostgresUnder(request.getfixturevalue("pg_server"))
    else:
        u = ReadThroughUnder(request.getfixturevalue("seaweedfs"),
                             request.getfixturevalue("pg_server"))
    yield u
    u.close()


def test_a_blob_stored_before_s3_was_configured_is_read_and_moved_once(seaweedfs, pg_server):  # noqa: F811
    u = ReadThroughUnder(seaweedfs, pg_server)
    try:
        old, key = b"deployed before --code-store", digest(b"deployed before --code-store")
        u.pg.store.put(key, "python", old)  # what the database held when S3 was configured
        assert not u.s3.store.exists(key) and u.store.exists(key)
        assert u.store.get(key) == old
        assert u.s3.store.get(key) == old  # moved: the next read is S3's
        u.pg.store.delete(key)
        assert u.store.get(key) == old
        u.store.delete(key)
        assert not u.store.exists(key)
        with pytest.raises(BlobNotFound):
            u.store.get(key)
    finally:
        u.close()


def test_a_damaged_blob_in_the_previous_store_is_not_moved(seaweedfs, pg_server):  # noqa: F811
    u = ReadThroughUnder(seaweedfs, pg_server)
    try:
        data = b"package"
        key = digest(data)
        u.pg.store.put(key, "python", data)
        u.pg.corrupt(key, b"damaged")
        with pytest.raises(CorruptBlob):
            u.store.get(key)
        assert not u.s3.store.exists(key)
    finally:
        u.close()


def test_put_get_exists_delete(under):
    blobs = under.store
    data = os.urandom(3 * 1024 * 1024)  # over one read buffer, over one S3 chunk
    key = digest(data)
    assert not blobs.exists(key)
    blobs.put(key, "python3.12", data)
    assert blobs.exists(key)
    assert blobs.get(key) == data
    blobs.delete(key)
    assert not blobs.exists(key)
    blobs.delete(key)  # idempotent
    with pytest.raises(BlobNotFound, match=key):
        blobs.get(key)


def test_put_is_idempotent_and_keeps_the_first_kind(under):
    data = b"PK\x05\x06" + b"\0" * 18
    key = digest(data)
    under.store.put(key, "python3.12", data)
    under.store.put(key, "nodejs20.x", data)  # another function, the same bytes
    assert under.store.get(key) == data


def test_missing_blob_is_named(under):
    key = digest(b"never stored")
    assert not under.store.exists(key)
    with pytest.raises(BlobNotFound) as info:
        under.store.get(key)
    assert isinstance(info.value, InternalError)  # the operator's to restore, not a 404
    assert "again" in str(info.value)


def test_a_damaged_blob_raises_corrupt_blob(under):
    data = b"the real package"
    key = digest(data)
    under.store.put(key, "python3.12", data)
    under.corrupt(key, b"the real packagf")
    with pytest.raises(CorruptBlob) as info:
        under.store.get(key)
    assert key in str(info.value) and digest(b"the real packagf") in str(info.value)


def test_a_key_that_is_not_the_data_digest_is_refused_before_any_write(under):
    data, other = b"content", b"other content"
    with pytest.raises(InvalidParameter, match="sha256"):
        under.store.put(digest(other), "python3.12", data)
    assert not under.store.exists(digest(other))
    for bad in ("../etc/passwd", "ABC", digest(data).upper()):
        with pytest.raises(InvalidParameter):
            under.store.get(bad)


def test_s3_wrong_secret_is_refused_by_the_server(seaweedfs):  # noqa: F811
    good = S3BlobStore.open_store(S3Location.parse(f"s3://{BUCKET}/wrong", seaweedfs.url,
                                                   s3_env(seaweedfs)))
    good.put(digest(b"x"), "layer", b"x")  # the bucket exists; only the signature differs
    bad = S3Location.parse(f"s3://{BUCKET}/wrong", seaweedfs.url,
                           s3_env(seaweedfs, secret="not-the-secret"))
    with pytest.raises(InternalError, match="HeadBucket.*AWS_SECRET_ACCESS_KEY"):
        S3BlobStore.open_store(bad)  # a node with the wrong secret does not start
    # Object requests are refused by the server's own signature check too.
    with pytest.raises(InternalError, match="GetObject.*(SignatureDoesNotMatch|AccessDenied)"):
        S3BlobStore(bad).get(digest(b"x"))


def test_s3_unreachable_endpoint_is_named():
    loc = S3Location.parse("s3://code", "http://127.0.0.1:9", {"AWS_ACCESS_KEY_ID": "k",
                                                              "AWS_SECRET_ACCESS_KEY": "s"})
    with pytest.raises(InternalError, match="unreachable.*--s3-endpoint"):
        S3BlobStore.open_store(loc)


def test_s3_missing_bucket_without_create_is_named(seaweedfs):  # noqa: F811
    loc = S3Location.parse("s3://runner-absent-" + uuid.uuid4().hex[:8], seaweedfs.url,
                           s3_env(seaweedfs))
    with pytest.raises(InternalError, match="no such bucket"):
        S3BlobStore.open_store(loc, create_bucket=False)


def test_s3_bucket_is_created_once_by_concurrent_nodes(seaweedfs):  # noqa: F811
    name = "runner-new-" + uuid.uuid4().hex[:8]
    loc = S3Location.parse(f"s3://{name}", seaweedfs.url, s3_env(seaweedfs))
    first, second = S3BlobStore.open_store(loc), S3BlobStore.open_store(loc)  # found there
    first.put(digest(b"y"), "layer", b"y")
    assert second.get(digest(b"y")) == b"y"  # no prefix: keys at the bucket's root


@pytest.mark.parametrize("url,endpoint,env,fix", [
    ("s3:/bucket", None, {}, "s3://BUCKET"),
    ("https://bucket/x", None, {}, "s3://BUCKET"),
    ("s3://Bad_Bucket", None, {}, "bucket"),
    ("s3://bucket", "ftp://host", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
     "--s3-endpoint"),
    ("s3://bucket", None, {"AWS_ACCESS_KEY_ID": "a"}, "AWS_SECRET_ACCESS_KEY"),
])
def test_location_errors_name_the_fix(url, endpoint, env, fix):
    with pytest.raises(InvalidParameter, match=fix):
        S3Location.parse(url, endpoint, env)


def test_location_from_the_aws_variables():
    loc = S3Location.parse("s3://code/a/b/", None, {
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "TOPSECRET", "AWS_SESSION_TOKEN": "t",
        "AWS_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://general:1",
        "AWS_ENDPOINT_URL_S3": "http://s3only:2/"})
    assert (loc.bucket, loc.prefix, loc.endpoint, loc.region, loc.session_token) == (
        "code", "a/b", "http://s3only:2", "eu-west-3", "t")
    assert "TOPSECRET" not in repr(loc)  # a logged location never shows the secret
    aws = S3Location.parse("s3://code", None, {"AWS_ACCESS_KEY_ID": "k",
                                                "AWS_SECRET_ACCESS_KEY": "s"})
    assert aws.endpoint == "https://s3.us-east-1.amazonaws.com" and aws.prefix == ""


def test_a_node_never_extracts_a_damaged_or_missing_package(pg_state, tmp_path):
    """The registry through its blob store: node B resolving a function deployed through A
    fetches the package; damaged, it fails with CorruptBlob and nothing lands in B's cache."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c): return 1")
    a = pg_state.registry(str(tmp_path / "a"))
    fv = a.deploy("f", FunctionConfig("python", "app.handler"), buf.getvalue())
    a.blobs.db.execute("UPDATE code_blobs SET data = %s WHERE sha256 = %s",
                       (buf.getvalue() + b"x", fv.code_sha256))
    b = pg_state.registry(str(tmp_path / "b"))
    with pytest.raises(CorruptBlob, match=fv.code_sha256):
        b.resolve("f")
    assert not os.path.exists(tmp_path / "b" / "code" / fv.code_sha256)
    a.blobs.delete(fv.code_sha256)
    with pytest.raises(BlobNotFound, match="deploy the package"):
        pg_state.registry(str(tmp_path / "c")).resolve("f")
    assert a.resolve("f").code_sha256 == fv.code_sha256  # A runs from its own disk still
