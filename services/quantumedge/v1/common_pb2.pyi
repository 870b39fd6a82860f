from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class Regime(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGIME_UNSPECIFIED: _ClassVar[Regime]
    REGIME_LOW_VOL_TREND_UP: _ClassVar[Regime]
    REGIME_LOW_VOL_TREND_DOWN: _ClassVar[Regime]
    REGIME_LOW_VOL_RANGE: _ClassVar[Regime]
    REGIME_HIGH_VOL_TREND_UP: _ClassVar[Regime]
    REGIME_HIGH_VOL_TREND_DOWN: _ClassVar[Regime]
    REGIME_HIGH_VOL_RANGE: _ClassVar[Regime]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
REGIME_UNSPECIFIED: Regime
REGIME_LOW_VOL_TREND_UP: Regime
REGIME_LOW_VOL_TREND_DOWN: Regime
REGIME_LOW_VOL_RANGE: Regime
REGIME_HIGH_VOL_TREND_UP: Regime
REGIME_HIGH_VOL_TREND_DOWN: Regime
REGIME_HIGH_VOL_RANGE: Regime

class Actor(_message.Message):
    __slots__ = ("subject", "source")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    subject: str
    source: str
    def __init__(self, subject: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class PriceLevel(_message.Message):
    __slots__ = ("price", "quantity")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    price: float
    quantity: float
    def __init__(self, price: _Optional[float] = ..., quantity: _Optional[float] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("key_id", "ed25519")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ED25519_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    ed25519: bytes
    def __init__(self, key_id: _Optional[str] = ..., ed25519: _Optional[bytes] = ...) -> None: ...
