from quantumedge.v1 import market_pb2 as _market_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamStatus(_message.Message):
    __slots__ = ("stream", "symbol", "connected", "last_event_time_ns", "events_per_second", "events", "reconnects", "gaps", "book_depth_levels", "malformed", "out_of_order")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    GAPS_FIELD_NUMBER: _ClassVar[int]
    BOOK_DEPTH_LEVELS_FIELD_NUMBER: _ClassVar[int]
    MALFORMED_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_ORDER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    symbol: str
    connected: bool
    last_event_time_ns: int
    events_per_second: float
    events: int
    reconnects: int
    gaps: int
    book_depth_levels: int
    malformed: int
    out_of_order: int
    def __init__(self, stream: _Optional[str] = ..., symbol: _Optional[str] = ..., connected: _Optional[bool] = ..., last_event_time_ns: _Optional[int] = ..., events_per_second: _Optional[float] = ..., events: _Optional[int] = ..., reconnects: _Optional[int] = ..., gaps: _Optional[int] = ..., book_depth_levels: _Optional[int] = ..., malformed: _Optional[int] = ..., out_of_order: _Optional[int] = ...) -> None: ...

class IngestServiceGetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IngestServiceGetStatusResponse(_message.Message):
    __slots__ = ("source", "streams", "events_published", "events_recorded", "running")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    source: str
    streams: _containers.RepeatedCompositeFieldContainer[StreamStatus]
    events_published: int
    events_recorded: int
    running: bool
    def __init__(self, source: _Optional[str] = ..., streams: _Optional[_Iterable[_Union[StreamStatus, _Mapping]]] = ..., events_published: _Optional[int] = ..., events_recorded: _Optional[int] = ..., running: _Optional[bool] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("symbol", "kinds", "max_events")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    max_events: int
    def __init__(self, symbol: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., max_events: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _market_pb2.MarketEvent
    def __init__(self, event: _Optional[_Union[_market_pb2.MarketEvent, _Mapping]] = ...) -> None: ...
