"""Invocation over a real gRPC server: results, errors, reports, logs, limits."""

from __future__ import annotations

import json
import threading

import grpc
import pytest

from runner.invocation.runner import zip_directory
from runner.service.proto import runner_api_pb2 as pb
from tests.conftest import guest
from tests.integration.conftest import error_type


def deploy_guest(client, name, example, **config):
    with open(guest("python", example, "function.json")) as f:
        manifest = json.load(f)
    manifest.update(config)
    return client.deploy(name, zip_directory(guest("python", example)), **manifest)


def test_hello_returns_payload_and_report(client):
    deploy_guest(client, "hello", "hello", environment={"GREETING": "Howdy"})
    resp = client.invoke("hello", b'{"name": "ada"}')
    body = json.loads(resp.payload)
    assert body["message"] == "Howdy, ada!"
    assert body["request_id"] == resp.request_id == resp.report.request_id
    assert resp.function_error == ""
    assert resp.executed_version == "$LATEST"
    assert resp.report.cold_start is True
    assert resp.report.HasField("init_duration_ms")
    assert resp.report.billed_duration_ms >= 1
    assert resp.report.billed_duration_ms >= resp.report.duration_ms
    assert resp.report.memory_size_mb == 128
    assert resp.report.max_memory_used_mb > 0


def test_warm_invocation_reuses_environment_and_globals(client):
    deploy_guest(client, "heavy", "heavy_init")
    first = client.invoke("heavy", b"{}")
    second = client.invoke("heavy", b"{}")
    assert first.report.cold_start and not second.report.cold_start
    assert not second.report.HasField("init_duration_ms")
    assert json.loads(first.payload)["calls"] == 1
    assert json.loads(second.payload)["calls"] == 2  # module globals survive between calls


def test_handler_exception_is_a_function_error(client):
    deploy_guest(client, "raises", "raises")
    resp = client.invoke("raises", b'{"card": "4242"}', log_type=pb.LOG_TYPE_TAIL)
    assert resp.function_error == "Unhandled"
    doc = json.loads(resp.payload)
    assert doc["errorType"] == "PaymentDeclined" == resp.error.error_type
    assert doc["errorMessage"] == "card 4242 declined"
    assert any("raise PaymentDeclined" in line for line in doc["stackTrace"])
    tail = resp.log_result.decode()
    assert "about to fail" in tail and "END RequestId" in tail and "REPORT RequestId" in tail
    # The environment survives a handled exception: the next call is warm.
    assert not client.invoke("raises", b"{}").report.cold_start


def test_timeout_kills_and_next_invocation_works(client):
    deploy_guest(client, "slow", "timeout")
    resp = client.invoke("slow", b'{"seconds": 30}')
    assert resp.function_error == "Unhandled"
    assert resp.error.error_type == "Sandbox.Timedout"
    assert resp.error.error_message == "Task timed out after 1.00 seconds"
    quick = client.invoke("slow", b'{"seconds": 0}')
    assert quick.function_error == ""
    assert quick.report.cold_start  # the timed-out environment was replaced


def test_memory_hog_gets_out_of_memory_and_is_replaced(client):
    deploy_guest(client, "hog", "memory_hog")
    resp = client.invoke("hog", b'{"mb": 1024}')
    assert resp.function_error == "Unhandled"
    assert resp.error.error_type == "Runtime.OutOfMemory"
    assert "128 MB" in resp.error.error_message
    small = client.invoke("hog", b'{"mb": 8}')
    assert json.loads(small.payload) == {"allocated_mb": 8}
    assert small.report.cold_start


def test_log_tail_is_last_4kb(client):
    code = b"def handler(e, c):\n    print('x' * 100 + '\\n' * 0, flush=True)\n    [print(i) for i in range(3000)]\n    return 1\n"
    client.deploy("chatty", _zip({"app.py": code}), runtime="python", handler="app.handler")
    resp = client.invoke("chatty", b"{}", log_type=pb.LOG_TYPE_TAIL)
    assert len(resp.log_result) == 4096
    assert resp.log_result.decode().rstrip().splitlines()[-1].startswith("REPORT RequestId:")
    assert client.invoke("chatty", b"{}").log_result == b""  # only on request


def test_lambda_context_and_environment(client):
    code = b"""
import os
def handler(event, context):
    return {
        "name": context.function_name, "version": context.function_version,
        "arn": context.invoked_function_arn, "mem": context.memory_limit_in_mb,
        "rid": context.aws_request_id, "group": context.log_group_name,
        "stream": context.log_stream_name, "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "LAMBDA_TASK_ROOT",
            "_HANDLER", "AWS_REGION", "MY_SETTING", "_RUNNER_FD", "PYTHONPATH")},
        "cwd": os.getcwd(),
    }
"""
    client.deploy("ctx", _zip({"app.py": code}), runtime="python3.11", handler="app.handler",
                  memory_mb=256, timeout_s=5, environment={"MY_SETTING": "on"})
    resp = client.invoke("ctx", b"{}")
    out = json.loads(resp.payload)
    assert out["name"] == "ctx" and out["version"] == "$LATEST"
    assert out["arn"].endswith(":function:ctx") and out["arn"].startswith("arn:aws:lambda:")
    assert out["mem"] == "256"
    assert out["rid"] == resp.request_id
    assert out["group"] == "/aws/lambda/ctx" and "[$LATEST]" in out["stream"]
    assert 0 < out["remaining"] <= 5000
    env = out["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ctx"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["_HANDLER"] == "app.handler" and env["MY_SETTING"] == "on"
    assert env["AWS_REGION"] and env["LAMBDA_TASK_ROOT"] == out["cwd"]
    assert env["_RUNNER_FD"] is None and env["PYTHONPATH"] is None  # nothing of the host leaks


@pytest.mark.parametrize("runtime, files, handler", [
    ("python", {"app.py": b"import os\ndef handler(e, c):\n    return [os.environ['AWS_LAMBDA_FUNCTION_VERSION'], os.environ['AWS_LAMBDA_LOG_STREAM_NAME'], c.function_version]\n"}, "app.handler"),
    ("nodejs", {"index.js": b"exports.handler = async (e, c) => [process.env.AWS_LAMBDA_FUNCTION_VERSION, process.env.AWS_LAMBDA_LOG_STREAM_NAME, c.functionVersion];\n"}, "index.handler"),
])
def test_a_published_version_names_itself_in_its_environment(client, runtime, files, handler):
    # Published from $LATEST, version 1 shares its code, and so its warm environments and
    # Python zygote (pools are keyed by revision): invoked as version 1, they say "1".
    client.deploy("ver", _zip(files), runtime=runtime, handler=handler)
    latest = json.loads(client.invoke("ver", b"{}").payload)  # builds the zygote for $LATEST
    client.functions.PublishVersion(pb.PublishVersionRequest(name="ver"))
    one = json.loads(client.invoke("ver", b"{}", qualifier="1").payload)
    assert latest[0] == latest[2] == "$LATEST" and "[$LATEST]" in latest[1]
    assert one[0] == one[2] == "1" and "[1]" in one[1]


@pytest.mark.parametrize("code,etype,fragment", [
    (b"import not_a_module\ndef handler(e, c): return 1\n", "Runtime.ImportModuleError", "Unable to import module 'app'"),
    (b"def other(e, c): return 1\n", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
    (b"def handler(e, c):\n  return {1, 2}\n", "Runtime.MarshalError", "Unable to marshal response"),
    (b"def handler(e, c) return 1\n", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
    (b"raise RuntimeError('init exploded')\ndef handler(e, c): return 1\n", "RuntimeError", "init exploded"),
])
def test_lambda_error_types(client, code, etype, fragment):
    client.deploy("bad", _zip({"app.py": code}), runtime="python", handler="app.handler")
    resp = client.invoke("bad", b"{}")
    assert resp.function_error == "Unhandled"
    assert resp.error.error_type == etype
    assert fragment in resp.error.error_message


def test_unknown_function_is_not_found(client):
    with pytest.raises(grpc.RpcError) as e:
        client.invoke("ghost", b"{}")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_type(e.value) == "ResourceNotFoundException"


def test_invalid_json_payload(client):
    deploy_guest(client, "echo", "echo")
    with pytest.raises(grpc.RpcError) as e:
        client.invoke("echo", b"{not json")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_type(e.value) == "InvalidRequestContentException"


def test_payload_over_6mb_in_and_out(client):
    deploy_guest(client, "echo", "echo")
    big = json.dumps("x" * (6 * 1024 * 1024)).encode()
    with pytest.raises(grpc.RpcError) as e:
        client.invoke("echo", big)
    assert error_type(e.value) == "RequestTooLargeException"
    assert "6291456" in e.value.details()
    code = b"def handler(e, c):\n    return 'y' * (7 * 1024 * 1024)\n"
    client.deploy("bigout", _zip({"app.py": code}), runtime="python", handler="app.handler", memory_mb=512)
    resp = client.invoke("bigout", b"{}")
    assert resp.function_error == "Unhandled"
    assert resp.error.error_type == "Function.ResponseSizeTooLarge"
    ok = client.invoke("echo", b'{"still": "serving"}')
    assert json.loads(ok.payload) == {"still": "serving"}


def test_concurrency_limit_throttles(client):
    code = b"import time\ndef handler(e, c):\n    time.sleep(e['s'])\n    return 'done'\n"
    client.deploy("one", _zip({"app.py": code}), runtime="python", handler="app.handler",
                  concurrency=1, timeout_s=10)
    client.invoke("one", b'{"s": 0}')  # warm it up
    started = threading.Event()
    results = []

    def slow():
        started.set()
        results.append(client.invoke("one", b'{"s": 1.5}').payload)

    t = threading.Thread(target=slow)
    t.start()
    started.wait()
    import time
    time.sleep(0.4)
    with pytest.raises(grpc.RpcError) as e:
        client.invoke("one", b'{"s": 0}')
    t.join()
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_type(e.value) == "TooManyRequestsException"
    assert results == [b'"done"']


def test_concurrent_invocations_get_separate_environments(client):
    # Identity per environment: a token drawn on its first invocation (every sandbox has its
    # own PID namespace, so os.getpid() repeats; import-time state is shared via the zygote).
    code = (b"import os, time\nENV = []\ndef handler(e, c):\n    ENV or ENV.append(os.urandom(8).hex())\n"
            b"    time.sleep(0.5)\n    return ENV[0]\n")
    client.deploy("par", _zip({"app.py": code}), runtime="python", handler="app.handler", concurrency=3)
    pids = []
    threads = [threading.Thread(target=lambda: pids.append(json.loads(client.invoke("par", b"{}").payload)))
               for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(pids)) == 3


def _zip(files: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_the_log_block_written_after_the_response_is_there_for_the_next_read(client):
    """Without LogType Tail the edge writes an invocation's log after its response; a read
    that follows the response must still find the whole block, every time."""
    deploy_guest(client, "echo", "echo")
    for i in range(20):
        resp = client.invoke("echo", json.dumps({"i": i}).encode())
        assert resp.log_result == b""
        lines = [m.line for m in client.invoker.GetLogs(pb.GetLogsRequest(name="echo", tail_lines=3))]
        assert lines[0] == f"START RequestId: {resp.request_id} Version: $LATEST"
        assert lines[1] == f"END RequestId: {resp.request_id}"
        assert lines[2].startswith(f"REPORT RequestId: {resp.request_id}\t")
