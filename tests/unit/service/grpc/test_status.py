import grpc
import pytest

from runner import errors
from runner.service.grpc.status import STATUS_TABLE, status_for


@pytest.mark.parametrize("exc,code", [
    (errors.InvalidParameter("f", "x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InvalidCodePackage("code", "x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InvalidRequestContent("payload", "x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.RequestTooLarge("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ResourceNotFound("x"), grpc.StatusCode.NOT_FOUND),
    (errors.ResourceConflict("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.TooManyRequests("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StorageFull("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.ServiceUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
    (errors.InternalError("x"), grpc.StatusCode.INTERNAL),
])
def test_table(exc, code):
    assert status_for(exc) == code


def test_every_platform_error_class_has_a_row():
    def leaves(cls):
        subs = cls.__subclasses__()
        return [cls] if not subs else [c for s in subs for c in leaves(s)]

    for cls in leaves(errors.PlatformError):
        assert any(issubclass(cls, row) for row, _ in STATUS_TABLE), cls
