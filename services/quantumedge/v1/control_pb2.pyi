from quantumedge.v1 import common_pb2 as _common_pb2
from quantumedge.v1 import risk_pb2 as _risk_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ControlEvent(_message.Message):
    __slots__ = ("event_id", "time_ns", "actor", "reason", "halt", "limits", "audit", "trading_state", "signature")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HALT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    time_ns: int
    actor: _common_pb2.Actor
    reason: str
    halt: HaltState
    limits: _risk_pb2.RiskLimits
    audit: AuditRecord
    trading_state: _risk_pb2.SymbolTradingState
    signature: _common_pb2.Signature
    def __init__(self, event_id: _Optional[str] = ..., time_ns: _Optional[int] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., reason: _Optional[str] = ..., halt: _Optional[_Union[HaltState, _Mapping]] = ..., limits: _Optional[_Union[_risk_pb2.RiskLimits, _Mapping]] = ..., audit: _Optional[_Union[AuditRecord, _Mapping]] = ..., trading_state: _Optional[_Union[_risk_pb2.SymbolTradingState, _Mapping]] = ..., signature: _Optional[_Union[_common_pb2.Signature, _Mapping]] = ...) -> None: ...

class HaltState(_message.Message):
    __slots__ = ("halted", "cancel_open_orders", "flatten", "limit", "value", "threshold", "since_ns", "acknowledged_ns")
    HALTED_FIELD_NUMBER: _ClassVar[int]
    CANCEL_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    FLATTEN_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_NS_FIELD_NUMBER: _ClassVar[int]
    halted: bool
    cancel_open_orders: bool
    flatten: bool
    limit: str
    value: float
    threshold: float
    since_ns: int
    acknowledged_ns: int
    def __init__(self, halted: _Optional[bool] = ..., cancel_open_orders: _Optional[bool] = ..., flatten: _Optional[bool] = ..., limit: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., since_ns: _Optional[int] = ..., acknowledged_ns: _Optional[int] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("service", "method", "request_json", "allowed", "outcome", "reason_code")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    service: str
    method: str
    request_json: str
    allowed: bool
    outcome: str
    reason_code: str
    def __init__(self, service: _Optional[str] = ..., method: _Optional[str] = ..., request_json: _Optional[str] = ..., allowed: _Optional[bool] = ..., outcome: _Optional[str] = ..., reason_code: _Optional[str] = ...) -> None: ...
