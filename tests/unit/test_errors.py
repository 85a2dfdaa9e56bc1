import pytest

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


def test_a_full_data_directory_is_named_not_hidden():
    import errno
    import sqlite3

    from runner import errors

    for exc in (OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EDQUOT, "Disk quota exceeded"),
                sqlite3.OperationalError("database or disk is full")):
        named = errors.storage_full(exc)
        assert isinstance(named, errors.StorageFull) and not isinstance(named, errors.InternalError)
        assert "out of space" in named.message and "--data-dir" in named.message
    for exc in (OSError(errno.EACCES, "Permission denied"), sqlite3.OperationalError("database is locked"),
                ValueError("x")):
        assert errors.storage_full(exc) is None


def test_a_full_disk_is_named_through_wrapping_and_keeps_its_own_status():
    import errno

    from runner import errors
    from runner.service.grpc.status import status_for
    from runner.service.http.status import describe

    def wrapped():
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise errors.InternalError("could not write the event") from exc

    with pytest.raises(errors.InternalError) as info:
        wrapped()
    named = errors.storage_full(info.value)
    assert isinstance(named, errors.StorageFull)
    assert status_for(named).name == "RESOURCE_EXHAUSTED"
    assert describe(OSError(errno.ENOSPC, "full"))[:2] == (507, "StorageFullException")
    # A named refusal raised while a full disk was being handled stays what it is.
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError:
            raise errors.ResourceNotFound("function not found") from None
    except errors.ResourceNotFound as exc:
        assert errors.storage_full(exc) is None
