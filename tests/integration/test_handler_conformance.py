"""Handler conformance with Lambda's runtimes (issue 20): names Lambda accepts deploy and
fail (or work) at invoke with Lambda's error types; Decimal results; the stackTrace starts at
the user's frame; Node's extensionless handler files."""

from __future__ import annotations

import io
import json
import zipfile

import pytest


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def invoke(runner, name):
    r = runner.invoke(name, b"{}")
    return r.function_error, json.loads(r.payload)


@pytest.mark.parametrize("handler, files, etype", [
    ("handler", {"app.py": "def handler(e, c): return 1\n"}, "Runtime.MalformedHandlerName"),
    ("sys.hello", {"app.py": ""}, "Runtime.BuiltInModuleConflict"),
    ("missing.handler", {"app.py": ""}, "Runtime.ImportModuleError"),
    ("app.nope", {"app.py": ""}, "Runtime.HandlerNotFound"),
])
def test_python_names_deploy_and_fail_at_invoke(runner, handler, files, etype):
    runner.deploy("f", zipped(files), runtime="python", handler=handler)  # accepted, as on Lambda
    err, doc = invoke(runner, "f")
    assert err == "Unhandled" and doc["errorType"] == etype


def test_python_handler_in_a_directory(runner):
    runner.deploy("f", zipped({"src/app.py": "def handler(e, c): return 'dir'\n",
                               "src/__init__.py": ""}), runtime="python", handler="src/app.handler")
    assert invoke(runner, "f") == (None, "dir")


def test_decimal_results_are_numbers(runner):
    code = ("from decimal import Decimal\n"
            "def handler(e, c):\n"
            "    return {'n': Decimal('12345678901234567890.123456789'), 'i': Decimal('7'),\n"
            "            'nested': [Decimal('-0.5')], 's': '\\u0000'}\n")
    runner.deploy("d", zipped({"app.py": code}), runtime="python", handler="app.handler")
    r = runner.invoke("d", b"{}")
    assert r.function_error is None
    assert r.payload == (b'{"n": 12345678901234567890.123456789, "i": 7, "nested": [-0.5], '
                         b'"s": "\\u0000"}')
    runner.deploy("o", zipped({"app.py": "def handler(e, c): return {'x': object()}\n"}),
                  runtime="python", handler="app.handler")
    err, doc = invoke(runner, "o")
    assert doc["errorType"] == "Runtime.MarshalError" and "object" in doc["errorMessage"]


def test_stack_trace_starts_at_the_handler(runner):
    code = "def helper():\n    raise ValueError('boom')\ndef handler(e, c):\n    helper()\n"
    runner.deploy("t", zipped({"app.py": code}), runtime="python", handler="app.handler")
    err, doc = invoke(runner, "t")
    assert doc["errorType"] == "ValueError"
    assert "app.py" in doc["stackTrace"][0] and "in handler" in doc["stackTrace"][0]
    assert not any("python_bootstrap" in line for line in doc["stackTrace"])


def test_node_extensionless_file_and_missing_module(runner):
    runner.deploy("n", zipped({"lib/main": "exports.handler = async () => 'plain';\n"}),
                  runtime="nodejs", handler="lib/main.handler")
    assert invoke(runner, "n") == (None, "plain")
    runner.deploy("m", zipped({"app.js": "exports.handler = 1;"}), runtime="nodejs",
                  handler="index.handler")  # a warning at deploy, Lambda's error at invoke
    err, doc = invoke(runner, "m")
    assert err == "Unhandled" and doc["errorType"] == "Runtime.ImportModuleError"
