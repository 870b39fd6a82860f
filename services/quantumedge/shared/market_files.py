"""The columnar layout of recorded market events: one flat Parquet row per MarketEvent.

The recorder writes it, replay reads it back into MarketEvents, and training and backtests
read the same columns directly (vectorised), so this module is the one place the layout lives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantumedge.shared.market_kinds import KIND_DEPTH, KIND_GAP, KIND_TOP_OF_BOOK, KIND_TRADE
from quantumedge.v1 import common_pb2, market_pb2

_LEVEL = pa.struct([("price", pa.float64()), ("quantity", pa.float64())])

SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("kind", pa.string()),
        ("exchange_time_ns", pa.int64()),
        ("receive_time_ns", pa.int64()),
        ("sequence", pa.uint64()),
        ("source", pa.string()),
        # trade
        ("price", pa.float64()),
        ("quantity", pa.float64()),
        ("buyer_is_maker", pa.bool_()),
        ("trade_id", pa.int64()),
        # top of book
        ("bid_price", pa.float64()),
        ("bid_quantity", pa.float64()),
        ("ask_price", pa.float64()),
        ("ask_quantity", pa.float64()),
        # depth
        ("bids", pa.list_(_LEVEL)),
        ("asks", pa.list_(_LEVEL)),
        ("last_update_id", pa.int64()),
        # gap
        ("gap_stream", pa.string()),
        ("gap_reason", pa.string()),
    ]
)


def event_kind(event: market_pb2.MarketEvent) -> str:
    """The payload kind of an event, as stored in the `kind` column."""
    return event.WhichOneof("payload") or ""


def events_to_table(events: Iterable[market_pb2.MarketEvent]) -> pa.Table:
    """Flatten events into a table with SCHEMA; absent fields are null."""
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for ev in events:
        kind = event_kind(ev)
        cols["symbol"].append(ev.symbol)
        cols["kind"].append(kind)
        cols["exchange_time_ns"].append(ev.exchange_time_ns)
        cols["receive_time_ns"].append(ev.receive_time_ns)
        cols["sequence"].append(ev.sequence)
        cols["source"].append(ev.source)
        t = ev.trade if kind == KIND_TRADE else None
        cols["price"].append(t.price if t else None)
        cols["quantity"].append(t.quantity if t else None)
        cols["buyer_is_maker"].append(t.buyer_is_maker if t else None)
        cols["trade_id"].append(t.trade_id if t else None)
        b = ev.top_of_book if kind == KIND_TOP_OF_BOOK else None
        cols["bid_price"].append(b.bid_price if b else None)
        cols["bid_quantity"].append(b.bid_quantity if b else None)
        cols["ask_price"].append(b.ask_price if b else None)
        cols["ask_quantity"].append(b.ask_quantity if b else None)
        d = ev.depth if kind == KIND_DEPTH else None
        cols["bids"].append([{"price": lv.price, "quantity": lv.quantity} for lv in d.bids] if d else None)
        cols["asks"].append([{"price": lv.price, "quantity": lv.quantity} for lv in d.asks] if d else None)
        cols["last_update_id"].append(d.last_update_id if d else None)
        g = ev.gap if kind == KIND_GAP else None
        cols["gap_stream"].append(g.stream if g else None)
        cols["gap_reason"].append(g.reason if g else None)
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def _levels(raw: list[dict] | None) -> list[common_pb2.PriceLevel]:
    return [common_pb2.PriceLevel(price=lv["price"], quantity=lv["quantity"]) for lv in raw or []]


def table_to_events(table: pa.Table) -> Iterator[market_pb2.MarketEvent]:
    """Rebuild MarketEvents from a table with SCHEMA, in row order."""
    for row in table.to_pylist():
        ev = market_pb2.MarketEvent(
            symbol=row["symbol"],
            exchange_time_ns=row["exchange_time_ns"],
            receive_time_ns=row["receive_time_ns"],
            sequence=row["sequence"],
            source=row["source"] or "",
        )
        kind = row["kind"]
        if kind == KIND_TRADE:
            ev.trade.CopyFrom(
                market_pb2.Trade(
                    price=row["price"],
                    quantity=row["quantity"],
                    buyer_is_maker=bool(row["buyer_is_maker"]),
                    trade_id=row["trade_id"] or 0,
                )
            )
        elif kind == KIND_TOP_OF_BOOK:
            ev.top_of_book.CopyFrom(
                market_pb2.TopOfBook(
                    bid_price=row["bid_price"],
                    bid_quantity=row["bid_quantity"],
                    ask_price=row["ask_price"],
                    ask_quantity=row["ask_quantity"],
                )
            )
        elif kind == KIND_DEPTH:
            ev.depth.CopyFrom(
                market_pb2.DepthUpdate(
                    bids=_levels(row["bids"]), asks=_levels(row["asks"]), last_update_id=row["last_update_id"] or 0
                )
            )
        elif kind == KIND_GAP:
            ev.gap.CopyFrom(market_pb2.GapMarker(stream=row["gap_stream"] or "", reason=row["gap_reason"] or ""))
        yield ev


def recorded_files(root: Path, symbol: str | None = None) -> list[Path]:
    """Every Parquet file under a recording root (optionally one symbol's), in time order of their names."""
    pattern = f"symbol={symbol}/**/*.parquet" if symbol else "**/*.parquet"
    return sorted(root.glob(pattern))


class UnreadableRecordingError(ValueError):
    """A recorded file that cannot be read (corrupt, truncated, not Parquet); the message names it."""


def _read_one(path: Path) -> pa.Table:
    try:
        return pq.read_table(path, schema=SCHEMA)
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableRecordingError(f"cannot read recorded file {path}: {exc}") from exc


def read_table(paths: Iterable[Path]) -> pa.Table:
    """Concatenate recorded files into one table sorted by exchange time (stable, so ties keep file order)."""
    tables = [_read_one(p) for p in paths]
    if not tables:
        return SCHEMA.empty_table()
    table = pa.concat_tables(tables)
    return table.sort_by([("exchange_time_ns", "ascending")])
