from runner import errors


def test_function_error_document_round_trip():
    e = errors.HandlerError("bad", "ValueError", ["frame 1", "frame 2"])
    doc = e.to_document()
    assert doc == {"errorMessage": "bad", "errorType": "ValueError", "stackTrace": ["frame 1", "frame 2"]}
    back = errors.FunctionError.from_document(doc)
    assert (back.message, back.error_type, back.stack_trace) == ("bad", "ValueError", ["frame 1", "frame 2"])


def test_string_stack_trace_is_split():
    e = errors.FunctionError.from_document({"errorMessage": "m", "stackTrace": "a\nb"})
    assert e.stack_trace == ["a", "b"] and e.error_type == "Runtime.Unknown"


def test_timeout_and_oom_messages():
    assert errors.FunctionTimeout.after(3).message == "Task timed out after 3.00 seconds"
    assert "limit 256 MB" in errors.FunctionOutOfMemory.at(256).message


def test_hierarchy_separates_platform_from_function_errors():
    assert issubclass(errors.InvalidCodePackage, errors.PlatformError)
    assert not issubclass(errors.FunctionTimeout, errors.PlatformError)
    p = errors.InvalidParameter("memory_mb", "too small")
    assert p.field == "memory_mb" and p.message == "memory_mb: too small"
    assert errors.TooManyRequests("x").error_type == "TooManyRequestsException"
