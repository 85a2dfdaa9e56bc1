"""Function management over gRPC, and bad input: each case gets a clear error and changes nothing."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import grpc
import pytest

from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.conftest import guest
from tests.integration.conftest import error_type

HELLO = zip_directory(guest("python", "hello"))


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def test_create_get_list_update_delete(client):
    info = client.deploy("hello", HELLO, runtime="python", handler="app.handler", memory_mb=256)
    assert info.version == "$LATEST" and info.revision > 0
    assert info.config.memory_mb == 256 and info.config.timeout_s == 3
    assert info.code_size == len(HELLO) and len(info.code_sha256) == 64
    got = client.functions.GetFunction(pb.GetFunctionRequest(name="hello"))
    assert got == info
    listed = client.functions.ListFunctions(pb.ListFunctionsRequest()).functions
    assert [f.name for f in listed] == ["hello"]

    # Configuration-only update: a new immutable revision, code kept, unset fields kept.
    upd = client.deploy("hello", b"", timeout_s=10, environment={"GREETING": "Yo"})
    assert upd.revision > info.revision
    assert upd.code_sha256 == info.code_sha256
    assert upd.config.memory_mb == 256 and upd.config.timeout_s == 10
    assert json.loads(client.invoke("hello", b"{}").payload)["message"] == "Yo, world!"

    # Publishing freezes $LATEST; later updates do not move the published version.
    v1 = client.functions.PublishVersion(pb.PublishVersionRequest(name="hello"))
    assert v1.version == "1" and v1.revision == upd.revision
    client.deploy("hello", b"", environment={"GREETING": "Hey"})
    assert json.loads(client.invoke("hello", b"{}").payload)["message"] == "Hey, world!"
    old = client.invoke("hello", b"{}", qualifier="1")
    assert json.loads(old.payload)["message"] == "Yo, world!" and old.executed_version == "1"
    versions = client.functions.ListVersions(pb.ListVersionsRequest(name="hello")).versions
    assert [v.version for v in versions] == ["$LATEST", "1"]

    deleted = client.functions.DeleteFunction(pb.DeleteFunctionRequest(name="hello"))
    assert deleted.versions_deleted == 2
    with pytest.raises(grpc.RpcError) as e:
        client.functions.GetFunction(pb.GetFunctionRequest(name="hello"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_update_of_code_moves_latest_and_retires_old_environments(client):
    client.deploy("f", _zip([("app.py", "def handler(e, c): return 1\n")]), runtime="python", handler="app.handler")
    assert client.invoke("f", b"{}").payload == b"1"
    client.deploy("f", _zip([("app.py", "def handler(e, c): return 2\n")]))
    resp = client.invoke("f", b"{}")
    assert resp.payload == b"2" and resp.report.cold_start


def test_deployed_function_survives_restart(tmp_path):
    from runner import Runner

    data = str(tmp_path / "d")
    with Runner(data) as r:
        r.deploy("keep", HELLO, runtime="python", handler="app.handler", memory_mb=512)
    with Runner(data) as r:
        assert r.get("keep").config.memory_mb == 512
        assert b"Hello, world!" in r.invoke("keep", b"{}").payload


BAD_CONFIGS = [
    ({"runtime": "cobol", "handler": "app.handler"}, "runtime", "unknown runtime"),
    ({"runtime": "python", "handler": "app.handler", "memory_mb": 64}, "memory_mb", "128..10240"),
    ({"runtime": "python", "handler": "app.handler", "memory_mb": 20000}, "memory_mb", "128..10240"),
    ({"runtime": "python", "handler": "app.handler", "timeout_s": 0.5}, "timeout_s", "1..900"),
    ({"runtime": "python", "handler": "app.handler", "timeout_s": 901}, "timeout_s", "1..900"),
    ({"runtime": "python", "handler": "two words"}, "handler", "module.function"),
    ({"runtime": "python", "handler": "app.handler", "environment": {"1BAD": "x"}}, "environment", "start with a letter"),
    ({"runtime": "python", "handler": "app.handler", "environment": {"AWS_REGION": "x"}}, "environment", "reserved"),
]


@pytest.mark.parametrize("config,field,fragment", BAD_CONFIGS)
def test_bad_config_is_rejected_and_changes_nothing(client, config, field, fragment):
    with pytest.raises(grpc.RpcError) as e:
        client.deploy("f", HELLO, **config)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(f"{field}:")
    assert fragment in e.value.details()
    assert list(client.functions.ListFunctions(pb.ListFunctionsRequest()).functions) == []


@pytest.mark.parametrize("name", ["bad name", "a/b", "x" * 65, "", "ünï"])
def test_odd_names_are_rejected(client, name):
    with pytest.raises(grpc.RpcError) as e:
        client.deploy(name, HELLO, runtime="python", handler="app.handler")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name:" in e.value.details()


def _symlink_entry():
    info = zipfile.ZipInfo("link.py")
    info.external_attr = (0o120777 << 16)
    return info


BAD_PACKAGES = [
    (_zip([("../evil.py", "x = 1")]), "escapes the package"),
    (_zip([("/etc/evil.py", "x = 1")]), "escapes the package"),
    (_zip([("a/../../evil.py", "x = 1")]), "escapes the package"),
    (_zip([(_symlink_entry(), "/etc/passwd")]), "symbolic link"),
    (_zip([("bomb.txt", "0" * (50 * 1024 * 1024))]), "zip bomb"),
    (b"PK\x03\x04 this is not really a zip", "not a valid zip"),
    (b"", "must include code"),  # over gRPC, empty code means "keep the code"
]


@pytest.mark.parametrize("package,fragment", BAD_PACKAGES)
def test_bad_packages_are_rejected_and_change_nothing(client, server, package, fragment):
    runner, _ = server
    before = runner.registry.code.digests()
    with pytest.raises(grpc.RpcError) as e:
        client.deploy("f", package, runtime="python", handler="app.handler")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("code:")
    assert fragment in e.value.details()
    assert runner.registry.code.digests() == before
    assert list(client.functions.ListFunctions(pb.ListFunctionsRequest()).functions) == []


def test_zip_with_lying_header_is_a_bomb(client, server):
    """An entry whose real data exceeds its declared size is caught while streaming."""
    data = bytearray(_zip([("app.py", "x" * 4000)]))
    # Rewrite the declared uncompressed size (central directory and local header) to 10 bytes.
    import struct
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)
    struct.pack_into("<I", data, 22, 10)
    with pytest.raises(grpc.RpcError) as e:
        client.deploy("f", bytes(data), runtime="python", handler="app.handler")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "code:" in e.value.details()


def test_existing_name_is_updated_not_duplicated(client):
    a = client.deploy("dup", HELLO, runtime="python", handler="app.handler")
    b = client.deploy("dup", HELLO, runtime="python", handler="app.handler")
    assert b.revision > a.revision
    assert [f.name for f in client.functions.ListFunctions(pb.ListFunctionsRequest()).functions] == ["dup"]


def test_first_deploy_needs_code(client):
    with pytest.raises(grpc.RpcError) as e:
        client.deploy("nocode", b"", runtime="python", handler="app.handler")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "code:" in e.value.details()


def test_delete_with_invocation_in_flight(client):
    code = _zip([("app.py", "import time\ndef handler(e, c):\n    time.sleep(1)\n    return 'finished'\n")])
    client.deploy("busy", code, runtime="python", handler="app.handler")
    out = []
    t = threading.Thread(target=lambda: out.append(client.invoke("busy", b"{}")))
    t.start()
    time.sleep(0.3)
    client.functions.DeleteFunction(pb.DeleteFunctionRequest(name="busy"))
    t.join()
    assert out[0].payload == b'"finished"'  # the in-flight call finished cleanly
    with pytest.raises(grpc.RpcError) as e:
        client.invoke("busy", b"{}")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("name", ["bad name", "a" * 65, "x/y", "ünïcode", ""])
def test_invalid_names_are_validation_errors_not_not_found(client, name):
    # Lambda answers ValidationException before looking anything up: a name that can never
    # exist is a caller's mistake to fix, not a function that is missing.
    calls = [
        lambda: client.invoke(name, b"{}"),
        lambda: client.functions.GetFunction(pb.GetFunctionRequest(name=name)),
        lambda: client.functions.DeleteFunction(pb.DeleteFunctionRequest(name=name)),
        lambda: client.functions.PublishVersion(pb.PublishVersionRequest(name=name)),
        lambda: client.functions.ListVersions(pb.ListVersionsRequest(name=name)),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert error_type(e.value) == "ValidationException"
        assert "not a valid function name" in e.value.details()


# Lost updates and Lambda's optimistic concurrency (issue 17, item 1; docs/decisions/046).


def test_revision_id_over_grpc(client):
    import uuid

    from runner.errors import PreconditionFailed
    from runner.service.http.status import status_for

    info = client.deploy("rev", HELLO, runtime="python", handler="app.handler")
    assert str(uuid.UUID(info.revision_id)) == info.revision_id
    assert client.functions.GetFunction(pb.GetFunctionRequest(name="rev")).revision_id == info.revision_id
    listed = client.functions.ListFunctions(pb.ListFunctionsRequest()).functions
    assert [f.revision_id for f in listed] == [info.revision_id]

    upd = client.functions.Deploy(pb.DeployRequest(
        name="rev", config=pb.FunctionConfig(memory_mb=256), revision_id=info.revision_id))
    assert upd.config.memory_mb == 256 and upd.revision_id != info.revision_id
    stale_calls = [
        lambda: client.functions.Deploy(pb.DeployRequest(
            name="rev", config=pb.FunctionConfig(memory_mb=512), revision_id=info.revision_id)),
        lambda: client.functions.PublishVersion(pb.PublishVersionRequest(
            name="rev", revision_id=info.revision_id)),
    ]
    for call in stale_calls:
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_type(e.value) == "PreconditionFailedException"
        assert e.value.details().startswith("revision_id: ")
    assert client.functions.GetFunction(pb.GetFunctionRequest(name="rev")) == upd  # unchanged
    v1 = client.functions.PublishVersion(pb.PublishVersionRequest(name="rev", revision_id=upd.revision_id))
    latest = client.functions.GetFunction(pb.GetFunctionRequest(name="rev"))
    assert v1.version == "1" and latest.revision_id == v1.revision_id != upd.revision_id
    assert status_for(PreconditionFailed("x")) == 412  # the HTTP edge's table, as Lambda's


def test_concurrent_partial_updates_over_grpc_apply_or_conflict(client):
    client.deploy("race", HELLO, runtime="python", handler="app.handler")
    changes = [{"memory_mb": 256}, {"timeout_s": 7.0}, {"concurrency": 5},
               {"ephemeral_storage_mb": 1024}, {"max_retries": 1}, {"max_event_age_s": 120}]
    start = threading.Barrier(len(changes))
    outcomes = [None] * len(changes)

    def update(i):
        start.wait()
        try:
            outcomes[i] = client.deploy("race", b"", **changes[i])
        except grpc.RpcError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=update, args=(i,)) for i in range(len(changes))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    final = client.functions.GetFunction(pb.GetFunctionRequest(name="race")).config
    applied = 0
    for change, outcome in zip(changes, outcomes):
        ((field, value),) = change.items()
        if isinstance(outcome, grpc.RpcError):
            assert outcome.code() == grpc.StatusCode.FAILED_PRECONDITION, outcome.details()
            assert error_type(outcome) == "ResourceConflictException"
            continue
        assert getattr(final, field) == value, f"the update of {field} returned but was lost"
        applied += 1
    assert applied >= 1


def test_cli_deploy_and_publish_take_a_revision_id(client):
    import os
    import subprocess
    import sys

    info = client.deploy("clirev", HELLO, runtime="python", handler="app.handler")
    stale = info.revision_id
    client.deploy("clirev", b"", memory_mb=256)
    env = dict(os.environ, RUNNER_ADDRESS=client.address)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True,
                              text=True, env=env, timeout=60)

    for args in (["deploy", "clirev", "--memory", "512"], ["publish", "clirev"]):
        refused = cli(*args, "--revision-id", stale)
        assert refused.returncode != 0 and "revision_id:" in refused.stderr, refused.stderr
    current = json.loads(cli("get", "clirev").stdout)["revision_id"]
    done = cli("deploy", "clirev", "--memory", "512", "--revision-id", current)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["config"]["memory_mb"] == 512
    new = json.loads(done.stdout)["revision_id"]
    published = cli("publish", "clirev", "--revision-id", new)
    assert published.returncode == 0 and json.loads(published.stdout)["version"] == "1"
