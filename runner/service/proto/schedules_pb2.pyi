from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Schedule(_message.Message):
    __slots__ = ("name", "function", "qualifier", "expression", "timezone", "input_json", "flexible_window_min", "max_retries", "max_event_age_s", "dead_letter", "start_at", "end_at", "enabled", "next_slot", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    FLEXIBLE_WINDOW_MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_AGE_S_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    END_AT_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NEXT_SLOT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    function: str
    qualifier: str
    expression: str
    timezone: str
    input_json: str
    flexible_window_min: int
    max_retries: int
    max_event_age_s: int
    dead_letter: str
    start_at: float
    end_at: float
    enabled: bool
    next_slot: float
    created_at: float
    def __init__(self, name: _Optional[str] = ..., function: _Optional[str] = ..., qualifier: _Optional[str] = ..., expression: _Optional[str] = ..., timezone: _Optional[str] = ..., input_json: _Optional[str] = ..., flexible_window_min: _Optional[int] = ..., max_retries: _Optional[int] = ..., max_event_age_s: _Optional[int] = ..., dead_letter: _Optional[str] = ..., start_at: _Optional[float] = ..., end_at: _Optional[float] = ..., enabled: _Optional[bool] = ..., next_slot: _Optional[float] = ..., created_at: _Optional[float] = ...) -> None: ...

class ScheduleName(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateScheduleRequest(_message.Message):
    __slots__ = ("schedule", "fields")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ...) -> None: ...

class DroppedSlot(_message.Message):
    __slots__ = ("slot", "reason", "at")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    slot: float
    reason: str
    at: float
    def __init__(self, slot: _Optional[float] = ..., reason: _Optional[str] = ..., at: _Optional[float] = ...) -> None: ...

class ListDroppedSlotsResponse(_message.Message):
    __slots__ = ("dropped",)
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    dropped: _containers.RepeatedCompositeFieldContainer[DroppedSlot]
    def __init__(self, dropped: _Optional[_Iterable[_Union[DroppedSlot, _Mapping]]] = ...) -> None: ...
