from quantumedge.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MarketEvent(_message.Message):
    __slots__ = ("symbol", "exchange_time_ns", "receive_time_ns", "sequence", "source", "trade", "top_of_book", "depth", "gap")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRADE_FIELD_NUMBER: _ClassVar[int]
    TOP_OF_BOOK_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    exchange_time_ns: int
    receive_time_ns: int
    sequence: int
    source: str
    trade: Trade
    top_of_book: TopOfBook
    depth: DepthUpdate
    gap: GapMarker
    def __init__(self, symbol: _Optional[str] = ..., exchange_time_ns: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., sequence: _Optional[int] = ..., source: _Optional[str] = ..., trade: _Optional[_Union[Trade, _Mapping]] = ..., top_of_book: _Optional[_Union[TopOfBook, _Mapping]] = ..., depth: _Optional[_Union[DepthUpdate, _Mapping]] = ..., gap: _Optional[_Union[GapMarker, _Mapping]] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("price", "quantity", "buyer_is_maker", "trade_id")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BUYER_IS_MAKER_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    price: float
    quantity: float
    buyer_is_maker: bool
    trade_id: int
    def __init__(self, price: _Optional[float] = ..., quantity: _Optional[float] = ..., buyer_is_maker: _Optional[bool] = ..., trade_id: _Optional[int] = ...) -> None: ...

class TopOfBook(_message.Message):
    __slots__ = ("bid_price", "bid_quantity", "ask_price", "ask_quantity")
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    bid_price: float
    bid_quantity: float
    ask_price: float
    ask_quantity: float
    def __init__(self, bid_price: _Optional[float] = ..., bid_quantity: _Optional[float] = ..., ask_price: _Optional[float] = ..., ask_quantity: _Optional[float] = ...) -> None: ...

class DepthUpdate(_message.Message):
    __slots__ = ("bids", "asks", "last_update_id")
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_ID_FIELD_NUMBER: _ClassVar[int]
    bids: _containers.RepeatedCompositeFieldContainer[_common_pb2.PriceLevel]
    asks: _containers.RepeatedCompositeFieldContainer[_common_pb2.PriceLevel]
    last_update_id: int
    def __init__(self, bids: _Optional[_Iterable[_Union[_common_pb2.PriceLevel, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[_common_pb2.PriceLevel, _Mapping]]] = ..., last_update_id: _Optional[int] = ...) -> None: ...

class GapMarker(_message.Message):
    __slots__ = ("stream", "reason")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stream: str
    reason: str
    def __init__(self, stream: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
