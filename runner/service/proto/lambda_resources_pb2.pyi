from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Alias(_message.Message):
    __slots__ = ("function", "name", "version", "weights", "description", "revision_id", "arn")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    ARN_FIELD_NUMBER: _ClassVar[int]
    function: str
    name: str
    version: str
    weights: _containers.ScalarMap[str, float]
    description: str
    revision_id: str
    arn: str
    def __init__(self, function: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., description: _Optional[str] = ..., revision_id: _Optional[str] = ..., arn: _Optional[str] = ...) -> None: ...

class CreateAliasRequest(_message.Message):
    __slots__ = ("function", "name", "version", "weights", "description")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    function: str
    name: str
    version: str
    weights: _containers.ScalarMap[str, float]
    description: str
    def __init__(self, function: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., description: _Optional[str] = ...) -> None: ...

class AliasRequest(_message.Message):
    __slots__ = ("function", "name")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    function: str
    name: str
    def __init__(self, function: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class UpdateAliasRequest(_message.Message):
    __slots__ = ("function", "name", "version", "weights", "replace_weights", "description", "revision_id")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    function: str
    name: str
    version: str
    weights: _containers.ScalarMap[str, float]
    replace_weights: bool
    description: str
    revision_id: str
    def __init__(self, function: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., replace_weights: _Optional[bool] = ..., description: _Optional[str] = ..., revision_id: _Optional[str] = ...) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ("function", "version")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    function: str
    version: str
    def __init__(self, function: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListAliasesResponse(_message.Message):
    __slots__ = ("aliases",)
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[Alias]
    def __init__(self, aliases: _Optional[_Iterable[_Union[Alias, _Mapping]]] = ...) -> None: ...

class DeleteAliasResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LayerVersion(_message.Message):
    __slots__ = ("name", "version", "arn", "description", "compatible_runtimes", "license", "code_sha256", "code_size", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COMPATIBLE_RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    CODE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CODE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    arn: str
    description: str
    compatible_runtimes: _containers.RepeatedScalarFieldContainer[str]
    license: str
    code_sha256: str
    code_size: int
    created_at: float
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., arn: _Optional[str] = ..., description: _Optional[str] = ..., compatible_runtimes: _Optional[_Iterable[str]] = ..., license: _Optional[str] = ..., code_sha256: _Optional[str] = ..., code_size: _Optional[int] = ..., created_at: _Optional[float] = ...) -> None: ...

class PublishLayerRequest(_message.Message):
    __slots__ = ("name", "content", "description", "compatible_runtimes", "license")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COMPATIBLE_RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    description: str
    compatible_runtimes: _containers.RepeatedScalarFieldContainer[str]
    license: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ..., description: _Optional[str] = ..., compatible_runtimes: _Optional[_Iterable[str]] = ..., license: _Optional[str] = ...) -> None: ...

class LayerVersionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListLayersRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListLayersResponse(_message.Message):
    __slots__ = ("layers",)
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    layers: _containers.RepeatedCompositeFieldContainer[LayerVersion]
    def __init__(self, layers: _Optional[_Iterable[_Union[LayerVersion, _Mapping]]] = ...) -> None: ...

class DeleteLayerVersionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoleInfo(_message.Message):
    __slots__ = ("name", "access_key_id", "has_session_token", "endpoint_url", "s3_endpoint_url", "generation", "updated_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HAS_SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    S3_ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    access_key_id: str
    has_session_token: bool
    endpoint_url: str
    s3_endpoint_url: str
    generation: int
    updated_at: float
    def __init__(self, name: _Optional[str] = ..., access_key_id: _Optional[str] = ..., has_session_token: _Optional[bool] = ..., endpoint_url: _Optional[str] = ..., s3_endpoint_url: _Optional[str] = ..., generation: _Optional[int] = ..., updated_at: _Optional[float] = ...) -> None: ...

class CreateRoleRequest(_message.Message):
    __slots__ = ("name", "access_key_id", "secret_access_key", "session_token", "endpoint_url", "s3_endpoint_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    S3_ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    endpoint_url: str
    s3_endpoint_url: str
    def __init__(self, name: _Optional[str] = ..., access_key_id: _Optional[str] = ..., secret_access_key: _Optional[str] = ..., session_token: _Optional[str] = ..., endpoint_url: _Optional[str] = ..., s3_endpoint_url: _Optional[str] = ...) -> None: ...

class UpdateRoleRequest(_message.Message):
    __slots__ = ("name", "access_key_id", "secret_access_key", "session_token", "endpoint_url", "s3_endpoint_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    S3_ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    endpoint_url: str
    s3_endpoint_url: str
    def __init__(self, name: _Optional[str] = ..., access_key_id: _Optional[str] = ..., secret_access_key: _Optional[str] = ..., session_token: _Optional[str] = ..., endpoint_url: _Optional[str] = ..., s3_endpoint_url: _Optional[str] = ...) -> None: ...

class RoleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListRolesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRolesResponse(_message.Message):
    __slots__ = ("roles",)
    ROLES_FIELD_NUMBER: _ClassVar[int]
    roles: _containers.RepeatedCompositeFieldContainer[RoleInfo]
    def __init__(self, roles: _Optional[_Iterable[_Union[RoleInfo, _Mapping]]] = ...) -> None: ...

class StreamInvokeRequest(_message.Message):
    __slots__ = ("name", "payload", "qualifier", "log_tail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    payload: bytes
    qualifier: str
    log_tail: bool
    def __init__(self, name: _Optional[str] = ..., payload: _Optional[bytes] = ..., qualifier: _Optional[str] = ..., log_tail: _Optional[bool] = ...) -> None: ...

class StreamInvokeComplete(_message.Message):
    __slots__ = ("error_code", "error_details", "log_tail", "executed_version", "request_id")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_DETAILS_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    error_details: str
    log_tail: bytes
    executed_version: str
    request_id: str
    def __init__(self, error_code: _Optional[str] = ..., error_details: _Optional[str] = ..., log_tail: _Optional[bytes] = ..., executed_version: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StreamInvokeEvent(_message.Message):
    __slots__ = ("payload_chunk", "complete")
    PAYLOAD_CHUNK_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    payload_chunk: bytes
    complete: StreamInvokeComplete
    def __init__(self, payload_chunk: _Optional[bytes] = ..., complete: _Optional[_Union[StreamInvokeComplete, _Mapping]] = ...) -> None: ...
