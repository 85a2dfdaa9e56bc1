from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageRequest(_message.Message):
    __slots__ = ("since_s",)
    SINCE_S_FIELD_NUMBER: _ClassVar[int]
    since_s: int
    def __init__(self, since_s: _Optional[int] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("day", "function", "requests", "errors", "throttles", "gb_seconds", "provisioned_gb_seconds")
    DAY_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    THROTTLES_FIELD_NUMBER: _ClassVar[int]
    GB_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_GB_SECONDS_FIELD_NUMBER: _ClassVar[int]
    day: str
    function: str
    requests: int
    errors: int
    throttles: int
    gb_seconds: float
    provisioned_gb_seconds: float
    def __init__(self, day: _Optional[str] = ..., function: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., throttles: _Optional[int] = ..., gb_seconds: _Optional[float] = ..., provisioned_gb_seconds: _Optional[float] = ...) -> None: ...

class UsageResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...
