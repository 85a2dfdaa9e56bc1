from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventSourceMapping(_message.Message):
    __slots__ = ("uuid", "lambda_json", "status_json")
    UUID_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_JSON_FIELD_NUMBER: _ClassVar[int]
    STATUS_JSON_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    lambda_json: str
    status_json: str
    def __init__(self, uuid: _Optional[str] = ..., lambda_json: _Optional[str] = ..., status_json: _Optional[str] = ...) -> None: ...

class CreateMappingRequest(_message.Message):
    __slots__ = ("lambda_json",)
    LAMBDA_JSON_FIELD_NUMBER: _ClassVar[int]
    lambda_json: str
    def __init__(self, lambda_json: _Optional[str] = ...) -> None: ...

class GetMappingRequest(_message.Message):
    __slots__ = ("uuid",)
    UUID_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    def __init__(self, uuid: _Optional[str] = ...) -> None: ...

class ListMappingsRequest(_message.Message):
    __slots__ = ("function",)
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    function: str
    def __init__(self, function: _Optional[str] = ...) -> None: ...

class ListMappingsResponse(_message.Message):
    __slots__ = ("mappings",)
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    mappings: _containers.RepeatedCompositeFieldContainer[EventSourceMapping]
    def __init__(self, mappings: _Optional[_Iterable[_Union[EventSourceMapping, _Mapping]]] = ...) -> None: ...

class UpdateMappingRequest(_message.Message):
    __slots__ = ("uuid", "lambda_json")
    UUID_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_JSON_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    lambda_json: str
    def __init__(self, uuid: _Optional[str] = ..., lambda_json: _Optional[str] = ...) -> None: ...

class DeleteMappingRequest(_message.Message):
    __slots__ = ("uuid",)
    UUID_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    def __init__(self, uuid: _Optional[str] = ...) -> None: ...
