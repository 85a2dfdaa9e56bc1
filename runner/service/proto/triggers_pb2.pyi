from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Trigger(_message.Message):
    __slots__ = ("name", "function", "qualifier", "bucket", "events", "prefix", "suffix", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    function: str
    qualifier: str
    bucket: str
    events: _containers.RepeatedScalarFieldContainer[str]
    prefix: str
    suffix: str
    created_at: float
    def __init__(self, name: _Optional[str] = ..., function: _Optional[str] = ..., qualifier: _Optional[str] = ..., bucket: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., prefix: _Optional[str] = ..., suffix: _Optional[str] = ..., created_at: _Optional[float] = ...) -> None: ...

class TriggerName(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTriggersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTriggersResponse(_message.Message):
    __slots__ = ("triggers",)
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    def __init__(self, triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ...) -> None: ...

class NotifyRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    def __init__(self, body: _Optional[bytes] = ...) -> None: ...

class NotifyResponse(_message.Message):
    __slots__ = ("records", "request_ids")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    records: int
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, records: _Optional[int] = ..., request_ids: _Optional[_Iterable[str]] = ...) -> None: ...
