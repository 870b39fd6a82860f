from quantumedge.v1 import signal_pb2 as _signal_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelInfo(_message.Message):
    __slots__ = ("symbol", "horizon", "version", "sha256", "feature_schema_hash", "served", "problem", "data_source", "gate_passed", "gate_failures", "gate_figures", "drift", "drift_reason", "drift_psi", "drift_out_of_range")
    class GateFiguresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMA_HASH_FIELD_NUMBER: _ClassVar[int]
    SERVED_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    GATE_PASSED_FIELD_NUMBER: _ClassVar[int]
    GATE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    GATE_FIGURES_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_REASON_FIELD_NUMBER: _ClassVar[int]
    DRIFT_PSI_FIELD_NUMBER: _ClassVar[int]
    DRIFT_OUT_OF_RANGE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    horizon: int
    version: str
    sha256: str
    feature_schema_hash: str
    served: bool
    problem: str
    data_source: str
    gate_passed: bool
    gate_failures: _containers.RepeatedScalarFieldContainer[str]
    gate_figures: _containers.ScalarMap[str, float]
    drift: bool
    drift_reason: str
    drift_psi: float
    drift_out_of_range: float
    def __init__(self, symbol: _Optional[str] = ..., horizon: _Optional[int] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ..., feature_schema_hash: _Optional[str] = ..., served: _Optional[bool] = ..., problem: _Optional[str] = ..., data_source: _Optional[str] = ..., gate_passed: _Optional[bool] = ..., gate_failures: _Optional[_Iterable[str]] = ..., gate_figures: _Optional[_Mapping[str, float]] = ..., drift: _Optional[bool] = ..., drift_reason: _Optional[str] = ..., drift_psi: _Optional[float] = ..., drift_out_of_range: _Optional[float] = ...) -> None: ...

class InferenceServiceGetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InferenceServiceGetStatusResponse(_message.Message):
    __slots__ = ("models", "events_seen", "signals_published", "warmed_up", "missing", "prediction_drift")
    class WarmedUpEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class PredictionDriftEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODELS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_SEEN_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    WARMED_UP_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_DRIFT_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    events_seen: int
    signals_published: int
    warmed_up: _containers.ScalarMap[str, bool]
    missing: _containers.RepeatedScalarFieldContainer[str]
    prediction_drift: _containers.ScalarMap[str, float]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., events_seen: _Optional[int] = ..., signals_published: _Optional[int] = ..., warmed_up: _Optional[_Mapping[str, bool]] = ..., missing: _Optional[_Iterable[str]] = ..., prediction_drift: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("symbol", "features")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    features: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, symbol: _Optional[str] = ..., features: _Optional[_Iterable[float]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("signal",)
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    signal: _signal_pb2.Signal
    def __init__(self, signal: _Optional[_Union[_signal_pb2.Signal, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "feature_names")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., feature_names: _Optional[_Iterable[str]] = ...) -> None: ...

class ReloadModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
