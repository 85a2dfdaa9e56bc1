from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_TYPE_NONE: _ClassVar[LogType]
    LOG_TYPE_TAIL: _ClassVar[LogType]

class InvocationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_RESPONSE: _ClassVar[InvocationType]
    EVENT: _ClassVar[InvocationType]
    DRY_RUN: _ClassVar[InvocationType]
LOG_TYPE_NONE: LogType
LOG_TYPE_TAIL: LogType
REQUEST_RESPONSE: InvocationType
EVENT: InvocationType
DRY_RUN: InvocationType

class FunctionConfig(_message.Message):
    __slots__ = ("runtime", "handler", "memory_mb", "timeout_s", "environment", "concurrency", "ephemeral_storage_mb", "network", "provisioned", "replace_environment", "max_retries", "max_event_age_s", "on_success", "on_failure", "description", "role", "layers", "replace_layers", "network_policy", "log_format", "application_log_level", "system_log_level")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_STORAGE_MB_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_FIELD_NUMBER: _ClassVar[int]
    REPLACE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_AGE_S_FIELD_NUMBER: _ClassVar[int]
    ON_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_LAYERS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_POLICY_FIELD_NUMBER: _ClassVar[int]
    LOG_FORMAT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    runtime: str
    handler: str
    memory_mb: int
    timeout_s: float
    environment: _containers.ScalarMap[str, str]
    concurrency: int
    ephemeral_storage_mb: int
    network: bool
    provisioned: int
    replace_environment: bool
    max_retries: int
    max_event_age_s: int
    on_success: str
    on_failure: str
    description: str
    role: str
    layers: _containers.RepeatedScalarFieldContainer[str]
    replace_layers: bool
    network_policy: str
    log_format: str
    application_log_level: str
    system_log_level: str
    def __init__(self, runtime: _Optional[str] = ..., handler: _Optional[str] = ..., memory_mb: _Optional[int] = ..., timeout_s: _Optional[float] = ..., environment: _Optional[_Mapping[str, str]] = ..., concurrency: _Optional[int] = ..., ephemeral_storage_mb: _Optional[int] = ..., network: _Optional[bool] = ..., provisioned: _Optional[int] = ..., replace_environment: _Optional[bool] = ..., max_retries: _Optional[int] = ..., max_event_age_s: _Optional[int] = ..., on_success: _Optional[str] = ..., on_failure: _Optional[str] = ..., description: _Optional[str] = ..., role: _Optional[str] = ..., layers: _Optional[_Iterable[str]] = ..., replace_layers: _Optional[bool] = ..., network_policy: _Optional[str] = ..., log_format: _Optional[str] = ..., application_log_level: _Optional[str] = ..., system_log_level: _Optional[str] = ...) -> None: ...

class FunctionInfo(_message.Message):
    __slots__ = ("name", "version", "revision", "config", "code_sha256", "code_size", "last_modified", "arn", "revision_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CODE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CODE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    ARN_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    revision: int
    config: FunctionConfig
    code_sha256: str
    code_size: int
    last_modified: float
    arn: str
    revision_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., revision: _Optional[int] = ..., config: _Optional[_Union[FunctionConfig, _Mapping]] = ..., code_sha256: _Optional[str] = ..., code_size: _Optional[int] = ..., last_modified: _Optional[float] = ..., arn: _Optional[str] = ..., revision_id: _Optional[str] = ...) -> None: ...

class DeployRequest(_message.Message):
    __slots__ = ("name", "config", "code", "revision_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: FunctionConfig
    code: bytes
    revision_id: str
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[FunctionConfig, _Mapping]] = ..., code: _Optional[bytes] = ..., revision_id: _Optional[str] = ...) -> None: ...

class GetFunctionRequest(_message.Message):
    __slots__ = ("name", "qualifier")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    name: str
    qualifier: str
    def __init__(self, name: _Optional[str] = ..., qualifier: _Optional[str] = ...) -> None: ...

class ListFunctionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFunctionsResponse(_message.Message):
    __slots__ = ("functions",)
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    functions: _containers.RepeatedCompositeFieldContainer[FunctionInfo]
    def __init__(self, functions: _Optional[_Iterable[_Union[FunctionInfo, _Mapping]]] = ...) -> None: ...

class DeleteFunctionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteFunctionResponse(_message.Message):
    __slots__ = ("name", "versions_deleted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_DELETED_FIELD_NUMBER: _ClassVar[int]
    name: str
    versions_deleted: int
    def __init__(self, name: _Optional[str] = ..., versions_deleted: _Optional[int] = ...) -> None: ...

class PublishVersionRequest(_message.Message):
    __slots__ = ("name", "description", "revision_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    revision_id: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., revision_id: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[FunctionInfo]
    def __init__(self, versions: _Optional[_Iterable[_Union[FunctionInfo, _Mapping]]] = ...) -> None: ...

class InvokeRequest(_message.Message):
    __slots__ = ("name", "qualifier", "payload", "log_type", "invocation_type", "client_context")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    LOG_TYPE_FIELD_NUMBER: _ClassVar[int]
    INVOCATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    name: str
    qualifier: str
    payload: bytes
    log_type: LogType
    invocation_type: InvocationType
    client_context: str
    def __init__(self, name: _Optional[str] = ..., qualifier: _Optional[str] = ..., payload: _Optional[bytes] = ..., log_type: _Optional[_Union[LogType, str]] = ..., invocation_type: _Optional[_Union[InvocationType, str]] = ..., client_context: _Optional[str] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("request_id", "duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb", "init_duration_ms", "cold_start")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    BILLED_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMORY_USED_MB_FIELD_NUMBER: _ClassVar[int]
    INIT_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float
    cold_start: bool
    def __init__(self, request_id: _Optional[str] = ..., duration_ms: _Optional[float] = ..., billed_duration_ms: _Optional[int] = ..., memory_size_mb: _Optional[int] = ..., max_memory_used_mb: _Optional[int] = ..., init_duration_ms: _Optional[float] = ..., cold_start: _Optional[bool] = ...) -> None: ...

class FunctionErrorDetail(_message.Message):
    __slots__ = ("error_type", "error_message", "stack_trace")
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_TRACE_FIELD_NUMBER: _ClassVar[int]
    error_type: str
    error_message: str
    stack_trace: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., stack_trace: _Optional[_Iterable[str]] = ...) -> None: ...

class InvokeResponse(_message.Message):
    __slots__ = ("payload", "function_error", "error", "log_result", "executed_version", "report", "request_id", "status_code")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOG_RESULT_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    function_error: str
    error: FunctionErrorDetail
    log_result: bytes
    executed_version: str
    report: Report
    request_id: str
    status_code: int
    def __init__(self, payload: _Optional[bytes] = ..., function_error: _Optional[str] = ..., error: _Optional[_Union[FunctionErrorDetail, _Mapping]] = ..., log_result: _Optional[bytes] = ..., executed_version: _Optional[str] = ..., report: _Optional[_Union[Report, _Mapping]] = ..., request_id: _Optional[str] = ..., status_code: _Optional[int] = ...) -> None: ...

class GetLogsRequest(_message.Message):
    __slots__ = ("name", "follow", "tail_lines")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    name: str
    follow: bool
    tail_lines: int
    def __init__(self, name: _Optional[str] = ..., follow: _Optional[bool] = ..., tail_lines: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: str
    def __init__(self, line: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("method", "path", "function", "qualifier", "route_key", "created_at")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    ROUTE_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    function: str
    qualifier: str
    route_key: str
    created_at: float
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., function: _Optional[str] = ..., qualifier: _Optional[str] = ..., route_key: _Optional[str] = ..., created_at: _Optional[float] = ...) -> None: ...

class AddRouteRequest(_message.Message):
    __slots__ = ("method", "path", "function", "qualifier")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    function: str
    qualifier: str
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., function: _Optional[str] = ..., qualifier: _Optional[str] = ...) -> None: ...

class ListRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoutesResponse(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class DeleteRouteRequest(_message.Message):
    __slots__ = ("method", "path")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("request_id", "function", "qualifier", "payload", "record_json", "created_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    function: str
    qualifier: str
    payload: bytes
    record_json: str
    created_at: float
    def __init__(self, request_id: _Optional[str] = ..., function: _Optional[str] = ..., qualifier: _Optional[str] = ..., payload: _Optional[bytes] = ..., record_json: _Optional[str] = ..., created_at: _Optional[float] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...

class ReplayDeadLettersRequest(_message.Message):
    __slots__ = ("name", "request_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., request_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReplayDeadLettersResponse(_message.Message):
    __slots__ = ("request_ids",)
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_ids: _Optional[_Iterable[str]] = ...) -> None: ...
