"""`runner alias ...`, `runner layer ...` and `runner deploy --layer/--role/--description`
against a real gRPC server (issue 20)."""

from __future__ import annotations

import json

import pytest

from runner.cli.main import main as cli_main
from tests.conftest import guest
from tests.integration.conftest import server  # noqa: F401 (fixture)


def run(capsys, *args):
    rc = cli_main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_alias_and_layer_commands(server, tmp_path, capsys):  # noqa: F811
    runner, address = server
    a = ["--address", address]
    layer_dir = tmp_path / "layer" / "python"
    layer_dir.mkdir(parents=True)
    (layer_dir / "greeting.py").write_text("WORD = 'hi'\n")
    rc, out, err = run(capsys, "layer", "publish", *a, "greet", str(tmp_path / "layer"),
                       "--compatible-runtimes", "python3.12")
    assert rc == 0, err
    layer = json.loads(out)
    assert layer["version"] == "1" and layer["arn"].endswith(":layer:greet:1")
    rc, out, _ = run(capsys, "layer", "list", *a)
    assert [x["name"] for x in json.loads(out)] == ["greet"]

    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("import greeting\n"
                                 "def handler(e, c):\n    return greeting.WORD\n")
    rc, out, err = run(capsys, "deploy", *a, "fn", str(code), "--runtime", "python3.12",
                       "--handler", "app.handler", "--layer", layer["arn"],
                       "--role", "reader", "--description", "greets")
    assert rc == 0, err
    cfg = json.loads(out)["config"]
    assert cfg["layers"] == [layer["arn"]] and cfg["role"] == "reader"
    assert cfg["description"] == "greets"
    assert runner.invoke("fn", b"{}").payload == b'"hi"'

    runner.publish("fn")
    runner.deploy("fn", guest("python", "echo"))
    runner.publish("fn")
    rc, out, err = run(capsys, "alias", "create", *a, "fn", "live", "--version", "1",
                       "--weights", "2=0.5")
    assert rc == 0, err
    alias = json.loads(out)
    assert alias["version"] == "1" and alias["weights"] == {"2": 0.5}
    rc, out, _ = run(capsys, "alias", "update", *a, "fn", "live", "--version", "2",
                     "--weights", "1=0")
    assert json.loads(out)["version"] == "2"
    rc, out, _ = run(capsys, "alias", "list", *a, "fn")
    assert [x["name"] for x in json.loads(out)] == ["live"]
    rc, out, err = run(capsys, "alias", "update", *a, "fn", "live", "--revision-id", "stale")
    assert rc == 2 and "PreconditionFailedException" in err
    rc, out, err = run(capsys, "alias", "create", *a, "fn", "bad", "--version", "9")
    assert rc == 2 and "ResourceNotFoundException" in err
    rc, out, err = run(capsys, "alias", "create", *a, "fn", "x", "--version", "1",
                       "--weights", "2:0.5")
    assert rc == 2 and "--weights" in err
    assert run(capsys, "alias", "delete", *a, "fn", "live")[0] == 0
    rc, _, err = run(capsys, "alias", "get", *a, "fn", "live")
    assert rc == 2 and "ResourceNotFoundException" in err
    assert run(capsys, "layer", "delete", *a, "greet", "1")[0] == 0
    rc, _, err = run(capsys, "layer", "get", *a, "greet", "1")
    assert rc == 2 and "ResourceNotFoundException" in err


def test_role_commands_never_print_secrets(server, tmp_path, capsys):  # noqa: F811
    runner, address = server
    a = ["--address", address]
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"Credentials": {"AccessKeyId": "AKIA-F", "SecretAccessKey":
                                                 "very-secret", "SessionToken": "tok-secret"}}))
    rc, out, err = run(capsys, "role", "create", *a, "store", "--from-file", str(creds),
                       "--s3-endpoint-url", "http://127.0.0.1:8333")
    assert rc == 0, err
    shown = json.loads(out)
    assert shown["access_key_id"] == "AKIA-F" and shown["has_session_token"] is True
    assert shown["s3_endpoint_url"] == "http://127.0.0.1:8333"
    rc, out, err = run(capsys, "role", "update", *a, "store", "--secret-access-key", "rotated")
    assert rc == 0 and json.loads(out)["generation"] == "2"
    assert runner.get_role("store").secret_access_key == "rotated"
    rc, out, _ = run(capsys, "role", "list", *a)
    rc2, out2, _ = run(capsys, "role", "get", *a, "store")
    for text in (out, out2):
        assert "secret" not in text and "tok-secret" not in text and "rotated" not in text
    rc, _, err = run(capsys, "role", "create", *a, "store", "--access-key-id", "x",
                     "--secret-access-key", "y")
    assert rc == 2 and "ResourceConflictException" in err
    assert run(capsys, "role", "delete", *a, "store")[0] == 0
    rc, _, err = run(capsys, "role", "get", *a, "store")
    assert rc == 2 and "ResourceNotFoundException" in err


def test_grpc_invoke_with_response_stream(server):  # noqa: F811
    import grpc

    from runner.service.grpc.server import SERVER_OPTIONS
    from runner.service.proto import lambda_resources_pb2 as lpb
    from runner.service.proto import lambda_resources_pb2_grpc as lpb_grpc

    runner, address = server
    runner.deploy("echo", guest("python", "echo"), runtime="python", handler="app.handler")
    with grpc.insecure_channel(address, options=SERVER_OPTIONS[:2]) as channel:
        stub = lpb_grpc.StreamingStub(channel)
        events = list(stub.InvokeWithResponseStream(lpb.StreamInvokeRequest(
            name="echo", payload=b'{"big": "' + b"x" * 100_000 + b'"}', log_tail=True)))
        chunks = [e.payload_chunk for e in events if e.WhichOneof("event") == "payload_chunk"]
        assert len(chunks) == 2 and json.loads(b"".join(chunks)) == {"big": "x" * 100_000}
        done = events[-1].complete
        assert done.error_code == "" and done.executed_version == "$LATEST"
        assert b"REPORT RequestId" in done.log_tail
        with pytest.raises(grpc.RpcError) as info:
            list(stub.InvokeWithResponseStream(lpb.StreamInvokeRequest(name="missing")))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
