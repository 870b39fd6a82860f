from quantumedge.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Signal(_message.Message):
    __slots__ = ("signal_id", "symbol", "event_time_ns", "created_time_ns", "predictions", "edge", "confidence", "regime", "mid_price", "spread_bps", "drift", "drift_reason", "drift_psi", "volatility_bps", "row_interval_s")
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    EDGE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    REGIME_FIELD_NUMBER: _ClassVar[int]
    MID_PRICE_FIELD_NUMBER: _ClassVar[int]
    SPREAD_BPS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_REASON_FIELD_NUMBER: _ClassVar[int]
    DRIFT_PSI_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_BPS_FIELD_NUMBER: _ClassVar[int]
    ROW_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    signal_id: str
    symbol: str
    event_time_ns: int
    created_time_ns: int
    predictions: _containers.RepeatedCompositeFieldContainer[HorizonPrediction]
    edge: float
    confidence: float
    regime: _common_pb2.Regime
    mid_price: float
    spread_bps: float
    drift: bool
    drift_reason: str
    drift_psi: float
    volatility_bps: float
    row_interval_s: float
    def __init__(self, signal_id: _Optional[str] = ..., symbol: _Optional[str] = ..., event_time_ns: _Optional[int] = ..., created_time_ns: _Optional[int] = ..., predictions: _Optional[_Iterable[_Union[HorizonPrediction, _Mapping]]] = ..., edge: _Optional[float] = ..., confidence: _Optional[float] = ..., regime: _Optional[_Union[_common_pb2.Regime, str]] = ..., mid_price: _Optional[float] = ..., spread_bps: _Optional[float] = ..., drift: _Optional[bool] = ..., drift_reason: _Optional[str] = ..., drift_psi: _Optional[float] = ..., volatility_bps: _Optional[float] = ..., row_interval_s: _Optional[float] = ...) -> None: ...

class HorizonPrediction(_message.Message):
    __slots__ = ("horizon", "p_up", "model_version", "expected_return_bps")
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    P_UP_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RETURN_BPS_FIELD_NUMBER: _ClassVar[int]
    horizon: int
    p_up: float
    model_version: str
    expected_return_bps: float
    def __init__(self, horizon: _Optional[int] = ..., p_up: _Optional[float] = ..., model_version: _Optional[str] = ..., expected_return_bps: _Optional[float] = ...) -> None: ...
