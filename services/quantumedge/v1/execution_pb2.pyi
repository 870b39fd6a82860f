from quantumedge.v1 import common_pb2 as _common_pb2
from quantumedge.v1 import risk_pb2 as _risk_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]
    ORDER_STATUS_EXPIRED: _ClassVar[OrderStatus]
    ORDER_STATUS_PENDING: _ClassVar[OrderStatus]

class OrderRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_ROLE_UNSPECIFIED: _ClassVar[OrderRole]
    ORDER_ROLE_ENTRY: _ClassVar[OrderRole]
    ORDER_ROLE_EXIT: _ClassVar[OrderRole]
    ORDER_ROLE_TAKE_PROFIT: _ClassVar[OrderRole]
    ORDER_ROLE_STOP_LOSS: _ClassVar[OrderRole]
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus
ORDER_STATUS_EXPIRED: OrderStatus
ORDER_STATUS_PENDING: OrderStatus
ORDER_ROLE_UNSPECIFIED: OrderRole
ORDER_ROLE_ENTRY: OrderRole
ORDER_ROLE_EXIT: OrderRole
ORDER_ROLE_TAKE_PROFIT: OrderRole
ORDER_ROLE_STOP_LOSS: OrderRole

class Order(_message.Message):
    __slots__ = ("client_order_id", "venue_order_id", "intent_id", "symbol", "side", "order_type", "time_in_force", "role", "quantity", "price", "stop_price", "filled_quantity", "average_price", "fees", "status", "reject_code", "reject_message", "created_time_ns", "updated_time_ns", "group_id", "venue", "take_profit_price", "stop_loss_price", "trailing_stop_bps", "time_stop_ns", "time_stop_deadline_ns", "protection_placed", "parent_client_order_id", "trade_ids", "version", "sent_time_ms", "base_fees", "expire_time_ns", "outcome_unknown_since_ns", "outcome_unknown_code", "synthetic_credit", "trailing_peak", "protected_quantity", "protection_generation", "exit_retry_attempts", "exit_retry_due_ns")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REJECT_CODE_FIELD_NUMBER: _ClassVar[int]
    REJECT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAILING_STOP_BPS_FIELD_NUMBER: _ClassVar[int]
    TIME_STOP_NS_FIELD_NUMBER: _ClassVar[int]
    TIME_STOP_DEADLINE_NS_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_PLACED_FIELD_NUMBER: _ClassVar[int]
    PARENT_CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TRADE_IDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    BASE_FEES_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_UNKNOWN_SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_UNKNOWN_CODE_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_CREDIT_FIELD_NUMBER: _ClassVar[int]
    TRAILING_PEAK_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_GENERATION_FIELD_NUMBER: _ClassVar[int]
    EXIT_RETRY_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    EXIT_RETRY_DUE_NS_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    venue_order_id: str
    intent_id: str
    symbol: str
    side: _common_pb2.Side
    order_type: _risk_pb2.OrderType
    time_in_force: _risk_pb2.TimeInForce
    role: OrderRole
    quantity: float
    price: float
    stop_price: float
    filled_quantity: float
    average_price: float
    fees: float
    status: OrderStatus
    reject_code: str
    reject_message: str
    created_time_ns: int
    updated_time_ns: int
    group_id: str
    venue: str
    take_profit_price: float
    stop_loss_price: float
    trailing_stop_bps: float
    time_stop_ns: int
    time_stop_deadline_ns: int
    protection_placed: bool
    parent_client_order_id: str
    trade_ids: _containers.RepeatedScalarFieldContainer[str]
    version: int
    sent_time_ms: int
    base_fees: float
    expire_time_ns: int
    outcome_unknown_since_ns: int
    outcome_unknown_code: str
    synthetic_credit: float
    trailing_peak: float
    protected_quantity: float
    protection_generation: int
    exit_retry_attempts: int
    exit_retry_due_ns: int
    def __init__(self, client_order_id: _Optional[str] = ..., venue_order_id: _Optional[str] = ..., intent_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., order_type: _Optional[_Union[_risk_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_risk_pb2.TimeInForce, str]] = ..., role: _Optional[_Union[OrderRole, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., stop_price: _Optional[float] = ..., filled_quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., fees: _Optional[float] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., reject_code: _Optional[str] = ..., reject_message: _Optional[str] = ..., created_time_ns: _Optional[int] = ..., updated_time_ns: _Optional[int] = ..., group_id: _Optional[str] = ..., venue: _Optional[str] = ..., take_profit_price: _Optional[float] = ..., stop_loss_price: _Optional[float] = ..., trailing_stop_bps: _Optional[float] = ..., time_stop_ns: _Optional[int] = ..., time_stop_deadline_ns: _Optional[int] = ..., protection_placed: _Optional[bool] = ..., parent_client_order_id: _Optional[str] = ..., trade_ids: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., sent_time_ms: _Optional[int] = ..., base_fees: _Optional[float] = ..., expire_time_ns: _Optional[int] = ..., outcome_unknown_since_ns: _Optional[int] = ..., outcome_unknown_code: _Optional[str] = ..., synthetic_credit: _Optional[float] = ..., trailing_peak: _Optional[float] = ..., protected_quantity: _Optional[float] = ..., protection_generation: _Optional[int] = ..., exit_retry_attempts: _Optional[int] = ..., exit_retry_due_ns: _Optional[int] = ...) -> None: ...

class Fill(_message.Message):
    __slots__ = ("client_order_id", "trade_id", "price", "quantity", "fee", "fee_asset", "is_maker", "time_ns", "fee_quote", "base_fee")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_ASSET_FIELD_NUMBER: _ClassVar[int]
    IS_MAKER_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    FEE_QUOTE_FIELD_NUMBER: _ClassVar[int]
    BASE_FEE_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    trade_id: str
    price: float
    quantity: float
    fee: float
    fee_asset: str
    is_maker: bool
    time_ns: int
    fee_quote: float
    base_fee: float
    def __init__(self, client_order_id: _Optional[str] = ..., trade_id: _Optional[str] = ..., price: _Optional[float] = ..., quantity: _Optional[float] = ..., fee: _Optional[float] = ..., fee_asset: _Optional[str] = ..., is_maker: _Optional[bool] = ..., time_ns: _Optional[int] = ..., fee_quote: _Optional[float] = ..., base_fee: _Optional[float] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "quantity", "average_price", "realized_pnl", "unrealized_pnl", "fees", "mark_price", "updated_time_ns", "baseline_quantity", "baseline_set", "dust_quantity")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    MARK_PRICE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SET_FIELD_NUMBER: _ClassVar[int]
    DUST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    average_price: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    mark_price: float
    updated_time_ns: int
    baseline_quantity: float
    baseline_set: bool
    dust_quantity: float
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., realized_pnl: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ..., fees: _Optional[float] = ..., mark_price: _Optional[float] = ..., updated_time_ns: _Optional[int] = ..., baseline_quantity: _Optional[float] = ..., baseline_set: _Optional[bool] = ..., dust_quantity: _Optional[float] = ...) -> None: ...

class ExecutionReport(_message.Message):
    __slots__ = ("report_id", "time_ns", "order", "fill", "position", "realized_pnl_delta", "fee_delta", "equity", "venue", "note", "alert", "observed", "hypothetical_fill")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_DELTA_FIELD_NUMBER: _ClassVar[int]
    FEE_DELTA_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    HYPOTHETICAL_FILL_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    time_ns: int
    order: Order
    fill: Fill
    position: Position
    realized_pnl_delta: float
    fee_delta: float
    equity: float
    venue: str
    note: str
    alert: str
    observed: bool
    hypothetical_fill: Fill
    def __init__(self, report_id: _Optional[str] = ..., time_ns: _Optional[int] = ..., order: _Optional[_Union[Order, _Mapping]] = ..., fill: _Optional[_Union[Fill, _Mapping]] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., realized_pnl_delta: _Optional[float] = ..., fee_delta: _Optional[float] = ..., equity: _Optional[float] = ..., venue: _Optional[str] = ..., note: _Optional[str] = ..., alert: _Optional[str] = ..., observed: _Optional[bool] = ..., hypothetical_fill: _Optional[_Union[Fill, _Mapping]] = ...) -> None: ...

class ExecutionServiceGetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExecutionServiceGetStatusResponse(_message.Message):
    __slots__ = ("venue", "halted", "intents_received", "orders_placed", "fills", "rejects", "open_orders", "realized_pnl", "unrealized_pnl", "equity", "fees", "duplicates_ignored", "reconciled_differences", "pending_orders", "venue_connected", "exits_only", "unknown_outcome_orders", "trading_states")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    INTENTS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ORDERS_PLACED_FIELD_NUMBER: _ClassVar[int]
    FILLS_FIELD_NUMBER: _ClassVar[int]
    REJECTS_FIELD_NUMBER: _ClassVar[int]
    OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_IGNORED_FIELD_NUMBER: _ClassVar[int]
    RECONCILED_DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    PENDING_ORDERS_FIELD_NUMBER: _ClassVar[int]
    VENUE_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    EXITS_ONLY_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_OUTCOME_ORDERS_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATES_FIELD_NUMBER: _ClassVar[int]
    venue: str
    halted: bool
    intents_received: int
    orders_placed: int
    fills: int
    rejects: int
    open_orders: int
    realized_pnl: float
    unrealized_pnl: float
    equity: float
    fees: float
    duplicates_ignored: int
    reconciled_differences: int
    pending_orders: int
    venue_connected: bool
    exits_only: _containers.RepeatedScalarFieldContainer[str]
    unknown_outcome_orders: int
    trading_states: _containers.RepeatedCompositeFieldContainer[_risk_pb2.SymbolTradingState]
    def __init__(self, venue: _Optional[str] = ..., halted: _Optional[bool] = ..., intents_received: _Optional[int] = ..., orders_placed: _Optional[int] = ..., fills: _Optional[int] = ..., rejects: _Optional[int] = ..., open_orders: _Optional[int] = ..., realized_pnl: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ..., equity: _Optional[float] = ..., fees: _Optional[float] = ..., duplicates_ignored: _Optional[int] = ..., reconciled_differences: _Optional[int] = ..., pending_orders: _Optional[int] = ..., venue_connected: _Optional[bool] = ..., exits_only: _Optional[_Iterable[str]] = ..., unknown_outcome_orders: _Optional[int] = ..., trading_states: _Optional[_Iterable[_Union[_risk_pb2.SymbolTradingState, _Mapping]]] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("symbol", "open_only")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    open_only: bool
    def __init__(self, symbol: _Optional[str] = ..., open_only: _Optional[bool] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class ListPositionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPositionsResponse(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class CancelAllRequest(_message.Message):
    __slots__ = ("symbol", "reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    reason: str
    def __init__(self, symbol: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelAllResponse(_message.Message):
    __slots__ = ("canceled",)
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    canceled: int
    def __init__(self, canceled: _Optional[int] = ...) -> None: ...

class FlattenRequest(_message.Message):
    __slots__ = ("symbol", "reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    reason: str
    def __init__(self, symbol: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FlattenResponse(_message.Message):
    __slots__ = ("orders_sent",)
    ORDERS_SENT_FIELD_NUMBER: _ClassVar[int]
    orders_sent: int
    def __init__(self, orders_sent: _Optional[int] = ...) -> None: ...

class SubmitOrderRequest(_message.Message):
    __slots__ = ("symbol", "side", "order_type", "time_in_force", "quantity", "limit_price", "take_profit_price", "stop_loss_price", "request_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_PRICE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    side: _common_pb2.Side
    order_type: _risk_pb2.OrderType
    time_in_force: _risk_pb2.TimeInForce
    quantity: float
    limit_price: float
    take_profit_price: float
    stop_loss_price: float
    request_id: str
    def __init__(self, symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., order_type: _Optional[_Union[_risk_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_risk_pb2.TimeInForce, str]] = ..., quantity: _Optional[float] = ..., limit_price: _Optional[float] = ..., take_profit_price: _Optional[float] = ..., stop_loss_price: _Optional[float] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitOrderResponse(_message.Message):
    __slots__ = ("decision", "order")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    decision: _risk_pb2.RiskDecision
    order: Order
    def __init__(self, decision: _Optional[_Union[_risk_pb2.RiskDecision, _Mapping]] = ..., order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...
