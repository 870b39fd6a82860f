"""Recorded market events as light row views built from Arrow columns, for the backtest's loop.

A MarketRow is one row of market_files.SCHEMA as a named tuple, read through the subset of the
MarketEvent API the engines use (`symbol`, the times, `WhichOneof("payload")`, `trade.price`,
`top_of_book.bid_price`, `depth.bids[i].price`, ...), so the features, the paper venue and risk take it
unchanged. It is built column by column (no protobuf, no per-row dict) and an absent field reads as
protobuf's default (0, 0.0, False, ""), so what the engines see is what they would see in the
MarketEvent: `to_pb` builds that event when one must cross a boundary (the bus, a gRPC reply).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from quantumedge.shared.market_files import KIND_DEPTH, KIND_GAP, KIND_TOP_OF_BOOK, KIND_TRADE, SCHEMA
from quantumedge.v1 import common_pb2, market_pb2


class Level(NamedTuple):
    price: float
    quantity: float


_FIELDS = tuple(n for n in SCHEMA.names if n not in ("bids", "asks"))
# Protobuf's default for each scalar column's type, which an absent (null) value reads as.
_DEFAULTS = {pa.string(): "", pa.float64(): 0.0, pa.bool_(): False, pa.int64(): 0, pa.uint64(): 0}


class MarketRow(NamedTuple):
    """One recorded event (SCHEMA's columns); the payload accessors return the row itself (a flat view)."""

    symbol: str
    kind: str
    exchange_time_ns: int
    receive_time_ns: int
    sequence: int
    source: str
    price: float
    quantity: float
    buyer_is_maker: bool
    trade_id: int
    bid_price: float
    bid_quantity: float
    ask_price: float
    ask_quantity: float
    last_update_id: int
    gap_stream: str
    gap_reason: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    def WhichOneof(self, _group: str) -> str | None:
        return self.kind or None

    @property
    def trade(self) -> MarketRow:
        return self

    @property
    def top_of_book(self) -> MarketRow:
        return self

    @property
    def depth(self) -> MarketRow:
        return self

    def to_pb(self) -> market_pb2.MarketEvent:
        """The MarketEvent this row records (as market_files.table_to_events builds it)."""
        ev = market_pb2.MarketEvent(
            symbol=self.symbol,
            exchange_time_ns=self.exchange_time_ns,
            receive_time_ns=self.receive_time_ns,
            sequence=self.sequence,
            source=self.source,
        )
        if self.kind == KIND_TRADE:
            ev.trade.CopyFrom(
                market_pb2.Trade(
                    price=self.price,
                    quantity=self.quantity,
                    buyer_is_maker=self.buyer_is_maker,
                    trade_id=self.trade_id,
                )
            )
        elif self.kind == KIND_TOP_OF_BOOK:
            ev.top_of_book.CopyFrom(
                market_pb2.TopOfBook(
                    bid_price=self.bid_price,
                    bid_quantity=self.bid_quantity,
                    ask_price=self.ask_price,
                    ask_quantity=self.ask_quantity,
                )
            )
        elif self.kind == KIND_DEPTH:
            ev.depth.CopyFrom(
                market_pb2.DepthUpdate(
                    bids=[common_pb2.PriceLevel(price=p, quantity=q) for p, q in self.bids],
                    asks=[common_pb2.PriceLevel(price=p, quantity=q) for p, q in self.asks],
                    last_update_id=self.last_update_id,
                )
            )
        elif self.kind == KIND_GAP:
            ev.gap.CopyFrom(market_pb2.GapMarker(stream=self.gap_stream, reason=self.gap_reason))
        return ev


def _pylist(arr: pa.ChunkedArray | pa.Array) -> list:
    # Through numpy: Arrow's own to_pylist builds a scalar per value, several times slower.
    return arr.to_numpy(zero_copy_only=False).tolist()


def _scalar(column: pa.ChunkedArray | pa.Array, name: str) -> list:
    kind = SCHEMA.field(name).type
    return _pylist(pc.fill_null(column, pa.scalar(_DEFAULTS[kind], kind)))


def _levels(column: pa.ChunkedArray | pa.Array) -> list[tuple[Level, ...]]:
    """Each row's levels as a tuple of Level (empty for null), from the raw offsets and child columns."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0 or arr.null_count == len(arr):
        return [()] * len(arr)
    # A batch is a slice: its offsets index the whole table's child (values), so only the span this slice
    # covers is converted (converting the whole child per batch made loading quadratic in the hour's rows).
    # A null row's span is masked by its validity, not filled (fill_null on a list column costs more than
    # the rest of the conversion).
    offsets, valid = _pylist(arr.offsets), _pylist(arr.is_valid())
    start = offsets[0]
    values = arr.values.slice(start, offsets[-1] - start)
    offsets = [o - start for o in offsets] if start else offsets
    pairs = list(map(Level._make, zip(_pylist(values.field("price")), _pylist(values.field("quantity")), strict=True)))
    return [tuple(pairs[a:b]) if ok and b > a else () for a, b, ok in zip(offsets, offsets[1:], valid, strict=False)]


def table_to_rows(table: pa.Table | pa.RecordBatch) -> Iterator[MarketRow]:
    """Every row of a SCHEMA table (or record batch) as a MarketRow, in row order, built from columns."""
    cols = [_scalar(table.column(name), name) for name in _FIELDS]
    cols += [_levels(table.column("bids")), _levels(table.column("asks"))]
    return map(MarketRow._make, zip(*cols, strict=True))
