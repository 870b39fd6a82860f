from quantumedge.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT_MAKER: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]

class IntentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTENT_KIND_UNSPECIFIED: _ClassVar[IntentKind]
    INTENT_KIND_ENTRY: _ClassVar[IntentKind]
    INTENT_KIND_EXIT: _ClassVar[IntentKind]

class TradingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADING_STATE_UNSPECIFIED: _ClassVar[TradingState]
    TRADING_STATE_ACTIVE: _ClassVar[TradingState]
    TRADING_STATE_REDUCING: _ClassVar[TradingState]
    TRADING_STATE_HALTED: _ClassVar[TradingState]
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_MARKET: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_LIMIT_MAKER: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
INTENT_KIND_UNSPECIFIED: IntentKind
INTENT_KIND_ENTRY: IntentKind
INTENT_KIND_EXIT: IntentKind
TRADING_STATE_UNSPECIFIED: TradingState
TRADING_STATE_ACTIVE: TradingState
TRADING_STATE_REDUCING: TradingState
TRADING_STATE_HALTED: TradingState

class OrderIntent(_message.Message):
    __slots__ = ("intent_id", "symbol", "side", "kind", "order_type", "time_in_force", "quantity", "limit_price", "take_profit_price", "stop_loss_price", "trailing_stop_bps", "time_stop_ns", "signal_id", "created_time_ns", "reference_price", "entry_ttl_ns")
    INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAILING_STOP_BPS_FIELD_NUMBER: _ClassVar[int]
    TIME_STOP_NS_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PRICE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TTL_NS_FIELD_NUMBER: _ClassVar[int]
    intent_id: str
    symbol: str
    side: _common_pb2.Side
    kind: IntentKind
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: float
    limit_price: float
    take_profit_price: float
    stop_loss_price: float
    trailing_stop_bps: float
    time_stop_ns: int
    signal_id: str
    created_time_ns: int
    reference_price: float
    entry_ttl_ns: int
    def __init__(self, intent_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., kind: _Optional[_Union[IntentKind, str]] = ..., order_type: _Optional[_Union[OrderType, str]] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., quantity: _Optional[float] = ..., limit_price: _Optional[float] = ..., take_profit_price: _Optional[float] = ..., stop_loss_price: _Optional[float] = ..., trailing_stop_bps: _Optional[float] = ..., time_stop_ns: _Optional[int] = ..., signal_id: _Optional[str] = ..., created_time_ns: _Optional[int] = ..., reference_price: _Optional[float] = ..., entry_ttl_ns: _Optional[int] = ...) -> None: ...

class RiskDecision(_message.Message):
    __slots__ = ("decision_id", "symbol", "approved", "reasons", "intent", "signal_id", "decided_time_ns", "signature", "moderator")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MODERATOR_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    symbol: str
    approved: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    intent: OrderIntent
    signal_id: str
    decided_time_ns: int
    signature: _common_pb2.Signature
    moderator: ModeratorVerdict
    def __init__(self, decision_id: _Optional[str] = ..., symbol: _Optional[str] = ..., approved: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., intent: _Optional[_Union[OrderIntent, _Mapping]] = ..., signal_id: _Optional[str] = ..., decided_time_ns: _Optional[int] = ..., signature: _Optional[_Union[_common_pb2.Signature, _Mapping]] = ..., moderator: _Optional[_Union[ModeratorVerdict, _Mapping]] = ...) -> None: ...

class ModeratorVerdict(_message.Message):
    __slots__ = ("status", "verdict", "size_factor", "reason", "code", "model", "latency_ms", "prompt_tokens", "completion_tokens")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    status: str
    verdict: str
    size_factor: float
    reason: str
    code: str
    model: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, status: _Optional[str] = ..., verdict: _Optional[str] = ..., size_factor: _Optional[float] = ..., reason: _Optional[str] = ..., code: _Optional[str] = ..., model: _Optional[str] = ..., latency_ms: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class RiskLimits(_message.Message):
    __slots__ = ("min_confidence", "min_edge", "risk_fraction", "max_order_notional", "max_symbol_notional", "max_gross_exposure", "max_open_positions", "daily_loss_limit", "max_drawdown_fraction", "max_loss_streak", "max_orders_per_window", "order_window_ns", "cooldown_after_loss_ns", "cooldown_after_exit_ns", "max_data_age_ns", "max_spread_bps", "min_depth_notional", "take_profit_bps", "stop_loss_bps", "time_stop_ns", "min_expected_return_bps", "soft_daily_loss_fraction")
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MIN_EDGE_FIELD_NUMBER: _ClassVar[int]
    RISK_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDER_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_SYMBOL_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_GROSS_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    MAX_OPEN_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    DAILY_LOSS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_LOSS_STREAK_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDERS_PER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    ORDER_WINDOW_NS_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_AFTER_LOSS_NS_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_AFTER_EXIT_NS_FIELD_NUMBER: _ClassVar[int]
    MAX_DATA_AGE_NS_FIELD_NUMBER: _ClassVar[int]
    MAX_SPREAD_BPS_FIELD_NUMBER: _ClassVar[int]
    MIN_DEPTH_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_BPS_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_BPS_FIELD_NUMBER: _ClassVar[int]
    TIME_STOP_NS_FIELD_NUMBER: _ClassVar[int]
    MIN_EXPECTED_RETURN_BPS_FIELD_NUMBER: _ClassVar[int]
    SOFT_DAILY_LOSS_FRACTION_FIELD_NUMBER: _ClassVar[int]
    min_confidence: float
    min_edge: float
    risk_fraction: float
    max_order_notional: float
    max_symbol_notional: float
    max_gross_exposure: float
    max_open_positions: int
    daily_loss_limit: float
    max_drawdown_fraction: float
    max_loss_streak: int
    max_orders_per_window: int
    order_window_ns: int
    cooldown_after_loss_ns: int
    cooldown_after_exit_ns: int
    max_data_age_ns: int
    max_spread_bps: float
    min_depth_notional: float
    take_profit_bps: float
    stop_loss_bps: float
    time_stop_ns: int
    min_expected_return_bps: float
    soft_daily_loss_fraction: float
    def __init__(self, min_confidence: _Optional[float] = ..., min_edge: _Optional[float] = ..., risk_fraction: _Optional[float] = ..., max_order_notional: _Optional[float] = ..., max_symbol_notional: _Optional[float] = ..., max_gross_exposure: _Optional[float] = ..., max_open_positions: _Optional[int] = ..., daily_loss_limit: _Optional[float] = ..., max_drawdown_fraction: _Optional[float] = ..., max_loss_streak: _Optional[int] = ..., max_orders_per_window: _Optional[int] = ..., order_window_ns: _Optional[int] = ..., cooldown_after_loss_ns: _Optional[int] = ..., cooldown_after_exit_ns: _Optional[int] = ..., max_data_age_ns: _Optional[int] = ..., max_spread_bps: _Optional[float] = ..., min_depth_notional: _Optional[float] = ..., take_profit_bps: _Optional[float] = ..., stop_loss_bps: _Optional[float] = ..., time_stop_ns: _Optional[int] = ..., min_expected_return_bps: _Optional[float] = ..., soft_daily_loss_fraction: _Optional[float] = ...) -> None: ...

class LimitStatus(_message.Message):
    __slots__ = ("name", "value", "threshold", "headroom", "breached")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    BREACHED_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    threshold: float
    headroom: float
    breached: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., headroom: _Optional[float] = ..., breached: _Optional[bool] = ...) -> None: ...

class RiskServiceGetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RiskServiceGetStatusResponse(_message.Message):
    __slots__ = ("halted", "halt_reason", "equity", "pnl_today", "drawdown", "gross_exposure", "limits", "signals_seen", "approved", "rejected", "last_market_data_ns", "last_execution_report_ns", "symbol_exposure", "execution_reports_seen", "symbol_states", "account_state")
    class SymbolExposureEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    HALTED_FIELD_NUMBER: _ClassVar[int]
    HALT_REASON_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    PNL_TODAY_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    GROSS_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_SEEN_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_MARKET_DATA_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_EXECUTION_REPORT_NS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_REPORTS_SEEN_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_STATES_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_STATE_FIELD_NUMBER: _ClassVar[int]
    halted: bool
    halt_reason: str
    equity: float
    pnl_today: float
    drawdown: float
    gross_exposure: float
    limits: _containers.RepeatedCompositeFieldContainer[LimitStatus]
    signals_seen: int
    approved: int
    rejected: int
    last_market_data_ns: int
    last_execution_report_ns: int
    symbol_exposure: _containers.ScalarMap[str, float]
    execution_reports_seen: int
    symbol_states: _containers.RepeatedCompositeFieldContainer[SymbolTradingState]
    account_state: SymbolTradingState
    def __init__(self, halted: _Optional[bool] = ..., halt_reason: _Optional[str] = ..., equity: _Optional[float] = ..., pnl_today: _Optional[float] = ..., drawdown: _Optional[float] = ..., gross_exposure: _Optional[float] = ..., limits: _Optional[_Iterable[_Union[LimitStatus, _Mapping]]] = ..., signals_seen: _Optional[int] = ..., approved: _Optional[int] = ..., rejected: _Optional[int] = ..., last_market_data_ns: _Optional[int] = ..., last_execution_report_ns: _Optional[int] = ..., symbol_exposure: _Optional[_Mapping[str, float]] = ..., execution_reports_seen: _Optional[int] = ..., symbol_states: _Optional[_Iterable[_Union[SymbolTradingState, _Mapping]]] = ..., account_state: _Optional[_Union[SymbolTradingState, _Mapping]] = ...) -> None: ...

class StateCause(_message.Message):
    __slots__ = ("reason_code", "detail", "since_ns")
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    reason_code: str
    detail: str
    since_ns: int
    def __init__(self, reason_code: _Optional[str] = ..., detail: _Optional[str] = ..., since_ns: _Optional[int] = ...) -> None: ...

class SymbolTradingState(_message.Message):
    __slots__ = ("symbol", "state", "reason_code", "detail", "since_ns", "causes")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    CAUSES_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    state: TradingState
    reason_code: str
    detail: str
    since_ns: int
    causes: _containers.RepeatedCompositeFieldContainer[StateCause]
    def __init__(self, symbol: _Optional[str] = ..., state: _Optional[_Union[TradingState, str]] = ..., reason_code: _Optional[str] = ..., detail: _Optional[str] = ..., since_ns: _Optional[int] = ..., causes: _Optional[_Iterable[_Union[StateCause, _Mapping]]] = ...) -> None: ...

class GetLimitsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLimitsResponse(_message.Message):
    __slots__ = ("limits",)
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    limits: RiskLimits
    def __init__(self, limits: _Optional[_Union[RiskLimits, _Mapping]] = ...) -> None: ...

class UpdateLimitsRequest(_message.Message):
    __slots__ = ("limits", "update_mask", "reason")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    limits: RiskLimits
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, limits: _Optional[_Union[RiskLimits, _Mapping]] = ..., update_mask: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class UpdateLimitsResponse(_message.Message):
    __slots__ = ("limits",)
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    limits: RiskLimits
    def __init__(self, limits: _Optional[_Union[RiskLimits, _Mapping]] = ...) -> None: ...

class HaltRequest(_message.Message):
    __slots__ = ("reason", "cancel_open_orders", "flatten")
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANCEL_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    FLATTEN_FIELD_NUMBER: _ClassVar[int]
    reason: str
    cancel_open_orders: bool
    flatten: bool
    def __init__(self, reason: _Optional[str] = ..., cancel_open_orders: _Optional[bool] = ..., flatten: _Optional[bool] = ...) -> None: ...

class HaltResponse(_message.Message):
    __slots__ = ("halted",)
    HALTED_FIELD_NUMBER: _ClassVar[int]
    halted: bool
    def __init__(self, halted: _Optional[bool] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("halted",)
    HALTED_FIELD_NUMBER: _ClassVar[int]
    halted: bool
    def __init__(self, halted: _Optional[bool] = ...) -> None: ...

class ReduceRequest(_message.Message):
    __slots__ = ("symbol", "reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    reason: str
    def __init__(self, symbol: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReduceResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: SymbolTradingState
    def __init__(self, state: _Optional[_Union[SymbolTradingState, _Mapping]] = ...) -> None: ...

class ActivateRequest(_message.Message):
    __slots__ = ("symbol", "reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    reason: str
    def __init__(self, symbol: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ActivateResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: SymbolTradingState
    def __init__(self, state: _Optional[_Union[SymbolTradingState, _Mapping]] = ...) -> None: ...

class ExplainDecisionRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class ExplainDecisionResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: RiskDecision
    def __init__(self, decision: _Optional[_Union[RiskDecision, _Mapping]] = ...) -> None: ...

class ListDecisionsRequest(_message.Message):
    __slots__ = ("symbol", "outcome", "reason", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    outcome: str
    reason: str
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListDecisionsResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[RiskDecision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[RiskDecision, _Mapping]]] = ...) -> None: ...

class EquityPoint(_message.Message):
    __slots__ = ("time_ns", "equity", "drawdown")
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    time_ns: int
    equity: float
    drawdown: float
    def __init__(self, time_ns: _Optional[int] = ..., equity: _Optional[float] = ..., drawdown: _Optional[float] = ...) -> None: ...

class GetEquityCurveRequest(_message.Message):
    __slots__ = ("max_points",)
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    max_points: int
    def __init__(self, max_points: _Optional[int] = ...) -> None: ...

class GetEquityCurveResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[EquityPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[EquityPoint, _Mapping]]] = ...) -> None: ...

class ReviewOrderRequest(_message.Message):
    __slots__ = ("intent",)
    INTENT_FIELD_NUMBER: _ClassVar[int]
    intent: OrderIntent
    def __init__(self, intent: _Optional[_Union[OrderIntent, _Mapping]] = ...) -> None: ...

class ReviewOrderResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: RiskDecision
    def __init__(self, decision: _Optional[_Union[RiskDecision, _Mapping]] = ...) -> None: ...

class RiskCheckpoint(_message.Message):
    __slots__ = ("checkpoint_id", "time_ns", "report_offsets", "acknowledged_ns", "base", "realized_total", "fees_total", "holdings", "marks", "has_day", "day", "day_start_equity", "peak_equity", "loss_streak", "last_loss_ns", "last_exit_ns", "last_report_ns", "reports_seen", "observed_reports", "observed_notional", "pending", "seen_reports", "seen_orders", "order_times_ns", "signature")
    class ReportOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class MarksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: CheckpointMark
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[CheckpointMark, _Mapping]] = ...) -> None: ...
    class LastLossNsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class LastExitNsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    REPORT_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_NS_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FEES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    HOLDINGS_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    HAS_DAY_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    DAY_START_EQUITY_FIELD_NUMBER: _ClassVar[int]
    PEAK_EQUITY_FIELD_NUMBER: _ClassVar[int]
    LOSS_STREAK_FIELD_NUMBER: _ClassVar[int]
    LAST_LOSS_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORT_NS_FIELD_NUMBER: _ClassVar[int]
    REPORTS_SEEN_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_REPORTS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    SEEN_REPORTS_FIELD_NUMBER: _ClassVar[int]
    SEEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    ORDER_TIMES_NS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    time_ns: int
    report_offsets: _containers.ScalarMap[int, int]
    acknowledged_ns: int
    base: float
    realized_total: float
    fees_total: float
    holdings: _containers.RepeatedCompositeFieldContainer[CheckpointHolding]
    marks: _containers.MessageMap[str, CheckpointMark]
    has_day: bool
    day: int
    day_start_equity: float
    peak_equity: float
    loss_streak: int
    last_loss_ns: _containers.ScalarMap[str, int]
    last_exit_ns: _containers.ScalarMap[str, int]
    last_report_ns: int
    reports_seen: int
    observed_reports: int
    observed_notional: float
    pending: _containers.RepeatedCompositeFieldContainer[CheckpointPending]
    seen_reports: _containers.RepeatedScalarFieldContainer[str]
    seen_orders: _containers.RepeatedScalarFieldContainer[str]
    order_times_ns: _containers.RepeatedScalarFieldContainer[int]
    signature: _common_pb2.Signature
    def __init__(self, checkpoint_id: _Optional[str] = ..., time_ns: _Optional[int] = ..., report_offsets: _Optional[_Mapping[int, int]] = ..., acknowledged_ns: _Optional[int] = ..., base: _Optional[float] = ..., realized_total: _Optional[float] = ..., fees_total: _Optional[float] = ..., holdings: _Optional[_Iterable[_Union[CheckpointHolding, _Mapping]]] = ..., marks: _Optional[_Mapping[str, CheckpointMark]] = ..., has_day: _Optional[bool] = ..., day: _Optional[int] = ..., day_start_equity: _Optional[float] = ..., peak_equity: _Optional[float] = ..., loss_streak: _Optional[int] = ..., last_loss_ns: _Optional[_Mapping[str, int]] = ..., last_exit_ns: _Optional[_Mapping[str, int]] = ..., last_report_ns: _Optional[int] = ..., reports_seen: _Optional[int] = ..., observed_reports: _Optional[int] = ..., observed_notional: _Optional[float] = ..., pending: _Optional[_Iterable[_Union[CheckpointPending, _Mapping]]] = ..., seen_reports: _Optional[_Iterable[str]] = ..., seen_orders: _Optional[_Iterable[str]] = ..., order_times_ns: _Optional[_Iterable[int]] = ..., signature: _Optional[_Union[_common_pb2.Signature, _Mapping]] = ...) -> None: ...

class CheckpointHolding(_message.Message):
    __slots__ = ("symbol", "quantity", "average_price", "trade_pnl")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRADE_PNL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    average_price: float
    trade_pnl: float
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., trade_pnl: _Optional[float] = ...) -> None: ...

class CheckpointMark(_message.Message):
    __slots__ = ("price", "time_ns")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    price: float
    time_ns: int
    def __init__(self, price: _Optional[float] = ..., time_ns: _Optional[int] = ...) -> None: ...

class CheckpointPending(_message.Message):
    __slots__ = ("intent_id", "symbol", "side", "exit", "quantity", "price", "created_ns", "acknowledged")
    INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    intent_id: str
    symbol: str
    side: _common_pb2.Side
    exit: bool
    quantity: float
    price: float
    created_ns: int
    acknowledged: bool
    def __init__(self, intent_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., exit: _Optional[bool] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., created_ns: _Optional[int] = ..., acknowledged: _Optional[bool] = ...) -> None: ...
