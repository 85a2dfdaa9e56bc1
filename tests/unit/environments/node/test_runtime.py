"""The Node.js runtime driven directly through its backend: handler styles, context, logs, errors.

Each test starts real `node` processes (runner/environments/node/guest/node_bootstrap.js) via ProcessBackend.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from runner.environments.backends import default_backends
from runner.environments.base import EnvState, ExecutionEnvironment
from runner.errors import FunctionInitError
from tests.unit.environments.node._node_helpers import GUESTS, code_path, guest, request, version, write_code

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(\S+)\t(INFO|WARN|ERROR|DEBUG|TRACE)\t(.*)$")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    backends = default_backends(str(tmp_path_factory.mktemp("envs")))
    assert "nodejs" in backends, "default_backends() must register nodejs when `node` is on PATH"
    yield backends["nodejs"]
    for b in backends.values():
        b.close()


@pytest.fixture
def started(backend):
    envs = []

    def start(v):
        backend.prepare(v)
        env = backend.create(v)
        envs.append(env)
        env.start()
        return env

    yield start
    for env in envs:
        env.destroy()


def ok(outcome) -> dict:
    assert outcome.error is None, outcome.error.to_document()
    return json.loads(outcome.payload)


def test_environment_satisfies_protocol(started):
    env = started(guest("hello"))
    assert isinstance(env, ExecutionEnvironment)
    assert env.state is EnvState.READY
    assert env.init_duration_ms is not None and env.init_duration_ms >= 0


def test_commonjs_async_handler_and_console_framing(started):
    env = started(guest("hello"))
    req = request({"name": "node"})
    out = env.invoke(req)
    assert ok(out) == {"message": "hello node"}
    lines = out.logs.decode().splitlines()
    assert len(lines) == 1
    m = LOG_LINE.match(lines[0])
    assert m, lines[0]
    assert m.group(1) == req.request_id and m.group(2) == "INFO"
    assert m.group(3) == "hello from fn"
    assert out.reusable and env.state is EnvState.READY


def test_warm_invocations_keep_state_and_request_ids(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "let n = 0;\n"
        "exports.handler = async (e, ctx) => {\n"
        "  n += 1; console.warn('multi\\nline'); console.error('err', {a: 1});\n"
        "  return { n, id: ctx.awsRequestId };\n"
        "};\n")})
    env = started(version(code))
    for i in (1, 2, 3):
        req = request({})
        out = env.invoke(req)
        assert ok(out) == {"n": i, "id": req.request_id}
        lines = out.logs.decode().split("\n")
        assert lines[-1] == ""
        warn, err = (LOG_LINE.match(x) for x in lines[:2])
        # One console call is one record: the newline inside the message becomes \r.
        assert warn.group(2) == "WARN" and warn.group(3) == "multi\rline"
        assert err.group(2) == "ERROR" and err.group(3) == "err { a: 1 }"
        assert warn.group(1) == err.group(1) == req.request_id


def test_context_fields_and_scrubbed_environment(started):
    env = started(guest("echo"))
    req = request({"k": [1, 2]})
    body = ok(env.invoke(req))
    ctx = body["context"]
    assert body["event"] == {"k": [1, 2]}
    assert ctx["functionName"] == "fn"
    assert ctx["functionVersion"] == "$LATEST"
    assert ctx["invokedFunctionArn"] == "arn:aws:lambda:local-1:000000000000:function:fn"
    assert ctx["memoryLimitInMB"] == "256"
    assert ctx["awsRequestId"] == req.request_id
    assert ctx["logGroupName"] == "/aws/lambda/fn"
    assert ctx["logStreamName"] == "2026/01/01/[$LATEST]1"
    assert 0 < ctx["remainingMs"] <= 3000
    assert ctx["callbackWaitsForEmptyEventLoop"] is True
    assert body["env"]["taskRoot"] in code_path(GUESTS / "echo")
    assert body["env"]["handler"] == "index.handler"
    assert body["cwd"] == body["env"]["taskRoot"]


def test_server_node_variables_never_reach_the_guest(started, monkeypatch):
    monkeypatch.setenv("NODE_OPTIONS", "--max-old-space-size=7")
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", "/nonexistent/ca.pem")
    env = started(guest("echo"))
    body = ok(env.invoke(request({})))
    assert body["env"]["nodeOptions"] is None
    assert body["env"]["extraCaCerts"] is None
    assert body["env"]["runnerFd"] is None  # the bootstrap hides its channel before user code


def test_callback_style_success_and_error(started):
    env = started(guest("callback"))
    assert ok(env.invoke(request({"n": 21}))) == {"style": "callback", "doubled": 42}
    out = env.invoke(request({"fail": "nope"}))
    doc = out.error.to_document()
    assert doc["errorType"] == "Error"
    assert doc["errorMessage"] == "callback failure: nope"
    assert doc["stackTrace"][0] == "Error: callback failure: nope"
    assert any(p in line for line in doc["stackTrace"] for p in code_path(GUESTS / "callback", "index.js"))
    assert out.reusable  # a handled error leaves the environment usable
    assert ok(env.invoke(request({"n": 1}))) == {"style": "callback", "doubled": 2}


def test_async_rejection(started):
    env = started(guest("async"))
    assert ok(env.invoke(request({"sleepMs": 5}))) == {"style": "async", "slept": 5}
    out = env.invoke(request({"reject": "why"}))
    doc = out.error.to_document()
    assert (doc["errorType"], doc["errorMessage"]) == ("RangeError", "rejected: why")
    assert isinstance(doc["stackTrace"], list) and doc["stackTrace"][0].startswith("RangeError")
    # Lambda's runtime logs the failure too.
    assert b"\tERROR\tInvoke Error \t{" in out.logs


def test_thrown_error(started):
    out = started(guest("throws")).invoke(request({"x": 1}))
    doc = out.error.to_document()
    assert doc["errorType"] == "TypeError"
    assert doc["errorMessage"] == 'bad input: {"x":1}'
    assert any(f"{p}:3" in line for line in doc["stackTrace"] for p in code_path(GUESTS / "throws", "index.js"))


@pytest.mark.parametrize("name,expected", [("esm", "esm"), ("esm_pkg", "esm-package")])
def test_es_modules(started, name, expected):
    body = ok(started(guest(name)).invoke(request({"x": 41})))
    assert body["style"] == expected
    if name == "esm_pkg":
        assert body["value"] == 42
    else:
        assert re.fullmatch(r"[0-9a-f]{16}", body["digest"])


def test_node_modules_resolve_from_the_code_directory(started):
    assert ok(started(guest("deps")).invoke(request({"name": "zip"}))) == {"greeting": "greetings, zip"}


def test_nested_handler_path_and_subdirectory(started, tmp_path):
    code = write_code(tmp_path, {"src/app.js": "exports.api = { run: async () => 'nested' };"})
    assert ok(started(version(code, "src/app.api.run")).invoke(request({}))) == "nested"


def test_non_serialisable_result_is_a_marshal_error(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "exports.handler = async (e) => {\n"
        "  if (e.kind === 'bigint') return { n: 10n };\n"
        "  const a = {}; a.self = a; return a;\n"
        "};\n")})
    env = started(version(code))
    for kind in ("bigint", "cycle"):
        out = env.invoke(request({"kind": kind}))
        doc = out.error.to_document()
        assert doc["errorType"] == "Runtime.MarshalError", doc
        assert doc["errorMessage"].startswith("Unable to stringify response body")
        assert out.reusable


def test_undefined_and_sync_results(started, tmp_path):
    code = write_code(tmp_path, {
        "a.js": "exports.handler = async () => undefined;",
        "b.js": "exports.handler = (e) => 42;",  # sync, no callback: Lambda answers null
    })
    assert started(version(code, "a.handler")).invoke(request({})).payload == b"null"
    assert started(version(code, "b.handler")).invoke(request({})).payload == b"null"


def test_first_settlement_wins(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "exports.handler = (e, ctx, cb) => { cb(null, 'first'); cb(null, 'second');"
        " throw new Error('ignored'); };")})
    env = started(version(code))
    assert ok(env.invoke(request({}))) == "first"
    assert ok(env.invoke(request({}))) == "first"


def init_error(started, code_dir, handler="index.handler") -> FunctionInitError:
    with pytest.raises(FunctionInitError) as info:
        started(version(code_dir, handler))
    return info.value


def test_unknown_handler_is_handler_not_found(started):
    err = init_error(started, GUESTS / "hello", "index.nope")
    assert err.error_type == "Runtime.HandlerNotFound"
    assert err.message == "index.nope is undefined or not exported"


def test_non_function_export_is_handler_not_found(started, tmp_path):
    err = init_error(started, write_code(tmp_path, {"index.js": "exports.handler = 3;"}))
    assert err.error_type == "Runtime.HandlerNotFound"
    assert "is not a function" in err.message


def test_syntax_error_at_load(started, tmp_path):
    err = init_error(started, write_code(tmp_path, {"index.js": "exports.handler = async ( => 1;\n"}))
    assert err.error_type == "Runtime.UserCodeSyntaxError"
    assert err.message.startswith("SyntaxError: ")
    assert err.stack_trace[0].startswith("Runtime.UserCodeSyntaxError: SyntaxError")


def test_missing_module(started, tmp_path):
    err = init_error(started, write_code(tmp_path, {"index.js": "require('left-pad-missing');"}))
    assert err.error_type == "Runtime.ImportModuleError"
    assert "Cannot find module 'left-pad-missing'" in err.message


def test_esm_missing_import(started, tmp_path):
    err = init_error(started, write_code(tmp_path, {"index.mjs": "import x from 'nope-esm';\nexport const handler = x;"}))
    assert err.error_type == "Runtime.ImportModuleError"
    assert "nope-esm" in err.message


def test_module_level_throw_is_reported_as_itself(started, tmp_path):
    err = init_error(started, write_code(tmp_path, {"index.js": "throw new RangeError('bad config');"}))
    assert (err.error_type, err.message) == ("RangeError", "bad config")


def test_init_logs_use_undefined_request_id(started, tmp_path):
    code = write_code(tmp_path, {"index.js": "console.log('loading');\nexports.handler = async () => 1;"})
    env = started(version(code))
    m = LOG_LINE.match(env.init_logs.decode().strip())
    assert m and m.group(1) == "undefined" and m.group(3) == "loading"


def test_check_code_warns_of_a_missing_handler_file(backend, tmp_path, caplog):
    write_code(tmp_path, {"other.js": "exports.handler = 1;"})
    backend.prepare(version(tmp_path, "index.handler"))  # Lambda reports it at invoke
    assert "index.js" in caplog.text and "index.mjs" in caplog.text
    caplog.clear()
    backend.prepare(version(GUESTS / "esm", "index.handler"))  # .mjs is a valid handler file
    assert "not found" not in caplog.text


def test_large_payload_round_trip(started):
    blob = "x" * (5 * 1024 * 1024)  # near Lambda's 6 MB: exercises 32-bit msgpack lengths
    body = ok(started(guest("echo")).invoke(request({"blob": blob})))
    assert body["event"]["blob"] == blob


def test_esm_syntax_error(started, tmp_path):
    err = init_error(started, write_code(tmp_path, {"index.mjs": "export const handler = async ( => 1;"}))
    assert err.error_type == "Runtime.UserCodeSyntaxError"


def test_rejection_with_a_non_error_value(started, tmp_path):
    code = write_code(tmp_path, {"index.js": "exports.handler = async () => { throw 'plain string'; };"})
    doc = started(version(code)).invoke(request({})).error.to_document()
    assert doc == {"errorType": "string", "errorMessage": "plain string", "stackTrace": []}


def test_direct_stdout_writes_reach_the_log(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "exports.handler = async () => { process.stdout.write('raw out\\n');"
        " process.stderr.write('raw err\\n'); return 1; };")})
    out = started(version(code)).invoke(request({}))
    assert b"raw out\n" in out.logs and b"raw err\n" in out.logs


def test_oversized_result_and_error_are_refused_in_the_guest(started, tmp_path):
    code = write_code(tmp_path, {"index.js": (
        "exports.handler = async (e) => {\n"
        "  if (e.kind === 'error') throw new Error('m'.repeat(20 * 1024 * 1024));\n"
        "  return 'x'.repeat(7 * 1024 * 1024);\n"
        "};\n")})
    env = started(version(code, timeout_s=10))
    out = env.invoke(request({"kind": "result"}, timeout_s=10))
    assert out.error.error_type == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291456 bytes)" in out.error.message
    assert out.reusable
    out = env.invoke(request({"kind": "error"}, timeout_s=10))
    assert out.error.error_type == "Error"
    assert out.error.message.endswith(" [truncated]") and len(out.error.message) < 300 * 1024
    assert out.reusable


def test_context_is_sent_once_and_kept_until_it_changes(started, monkeypatch):
    from dataclasses import replace

    from runner.environments.process import environment as process_environment

    frames = []
    real_encode = process_environment.encode
    monkeypatch.setattr(process_environment, "encode", lambda msg: frames.append(msg) or real_encode(msg))
    env = started(guest("echo"))
    first = request({})
    first.deadline_ms = int(time.time() * 1000) + 3000
    ok(env.invoke(first))
    # Same context object, later deadline: the frame omits ctx, the guest keeps the fields.
    second = replace(first, request_id="second", deadline_ms=int(time.time() * 1000) + 60_000)
    body = ok(env.invoke(second))
    invokes = [f for f in frames if f["t"] == "invoke"]
    assert "ctx" in invokes[0] and "ctx" not in invokes[1]
    assert body["context"]["functionName"] == "fn" and body["context"]["awsRequestId"] == "second"
    assert 3000 < body["context"]["remainingMs"] <= 60_000
    # Another context object (say a published version's): sent, and the guest switches to it.
    third = replace(second, request_id="third", context={**first.context, "function_version": "7"})
    body = ok(env.invoke(third))
    assert "ctx" in [f for f in frames if f["t"] == "invoke"][2]
    assert body["context"]["functionVersion"] == "7"


TRACE_JS = """
const cp = require('child_process');
exports.handler = async (e) => {
  const seen = {
    value: process.env._X_AMZN_TRACE_ID,
    has: '_X_AMZN_TRACE_ID' in process.env,
    listed: Object.keys(process.env).includes('_X_AMZN_TRACE_ID'),
    child: cp.execFileSync('/bin/sh', ['-c', 'printf %s "${_X_AMZN_TRACE_ID-unset}"']).toString(),
    name: process.env.AWS_LAMBDA_FUNCTION_NAME,
  };
  if (e.own) process.env._X_AMZN_TRACE_ID = e.own;
  if (e.drop) delete process.env._X_AMZN_TRACE_ID;
  seen.after = process.env._X_AMZN_TRACE_ID;
  return seen;
};
"""


def test_trace_id_variable_per_invocation_reaches_child_processes(started, tmp_path):
    env = started(version(write_code(tmp_path, {"index.js": TRACE_JS})))
    first = request({"own": "Root=mine"})
    body = ok(env.invoke(first))
    want = f"Root={first.request_id}"
    assert body == {"value": want, "has": True, "listed": True, "child": want, "name": "fn",
                    "after": "Root=mine"}
    # The handler's own value lasts until the next invocation sets the next id; so does a delete.
    second = request({"drop": True})
    body = ok(env.invoke(second))
    assert body["value"] == body["child"] == f"Root={second.request_id}" and "after" not in body
    third = request({})
    assert ok(env.invoke(third))["child"] == f"Root={third.request_id}"


def test_an_esm_handler_with_top_level_await_loads(started, tmp_path):
    # Node 20.19+ require()s ESM but refuses a graph with top-level await
    # (ERR_REQUIRE_ASYNC_MODULE): such a module is imported instead, as Lambda does.
    code = write_code(tmp_path / "tla", {
        "package.json": '{"type": "module"}',
        "index.js": "const n = await Promise.resolve(7);\nexport const handler = async () => n;\n"})
    assert ok(started(version(code)).invoke(request({}))) == 7


def test_a_huge_error_name_is_cut_not_a_broken_frame(started, tmp_path):
    code = write_code(tmp_path / "name", {"index.js": (
        "exports.handler = async () => { const e = new Error('m'); e.name = 'N'.repeat(20e6); throw e; };\n")})
    out = started(version(code)).invoke(request({}))
    assert out.error.error_type == "N" * 1024 and out.error.message == "m" and out.reusable
