"""The function's code as the Python guest meets it (runner/environments/python/guest/python_user_code.py):
the handler's import with Lambda's error types, stack traces without the bootstrap's own frames,
bounded error documents."""

import os
import sys

import pytest

from runner.environments.python.runtime import GUEST_DIR


@pytest.fixture(scope="module")
def user_code():
    sys.path.insert(0, os.path.abspath(GUEST_DIR))  # as the bootstrap imports it: from its folder
    try:
        import python_user_code
    finally:
        sys.path.remove(os.path.abspath(GUEST_DIR))
    return python_user_code


@pytest.fixture
def task_root(tmp_path, monkeypatch):
    """A task root on sys.path; the modules imported from it are forgotten after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("guest_user_"):
            del sys.modules[name]


def test_an_error_in_module_code_is_traced_from_the_users_frame(user_code, task_root):
    (task_root / "guest_user_raises.py").write_text(
        "def helper():\n    raise ValueError('at import')\n\nhelper()\n")
    handler, doc = user_code.load_handler("guest_user_raises.handler")
    assert handler is None
    assert doc["errorType"] == "ValueError" and doc["errorMessage"] == "at import"
    assert "guest_user_raises.py" in doc["stackTrace"][-1] and "in helper" in doc["stackTrace"][-1]
    # The import machinery's frames may show (Lambda's do); the bootstrap's own never.
    assert not any("python_user_code" in line or "python_bootstrap" in line
                   for line in doc["stackTrace"])


@pytest.mark.parametrize("spec, error_type", [
    ("nodot", "Runtime.MalformedHandlerName"),
    ("sys.handler", "Runtime.BuiltInModuleConflict"),
    ("guest_user_absent.handler", "Runtime.ImportModuleError"),
    ("guest_user_plain.handler", "Runtime.HandlerNotFound"),
    ("guest_user_plain.VALUE", "Runtime.HandlerNotFound"),
])
def test_handler_names_lambda_refuses_get_its_error_types(user_code, task_root, spec, error_type):
    (task_root / "guest_user_plain.py").write_text("VALUE = 1\n")
    handler, doc = user_code.load_handler(spec)
    assert handler is None and doc["errorType"] == error_type, doc


def test_a_handler_is_loaded_from_a_nested_path(user_code, task_root):
    (task_root / "guest_user_pkg").mkdir()
    (task_root / "guest_user_pkg" / "app.py").write_text("def handler(e, c):\n    return e\n")
    handler, doc = user_code.load_handler("guest_user_pkg/app.handler")
    assert doc is None and handler({"x": 1}, None) == {"x": 1}


def test_error_documents_stay_bounded(user_code):
    doc = user_code.error_document("E" * 2000, "m" * (user_code.MAX_ERROR_CHARS + 10))
    assert len(doc["errorType"]) == 1024
    assert doc["errorMessage"].endswith(" [truncated]")
    assert len(doc["errorMessage"]) == user_code.MAX_ERROR_CHARS + len(" [truncated]")
    assert doc["stackTrace"] == []
