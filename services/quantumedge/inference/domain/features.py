"""The one feature definition, built two ways: online (per event) and offline (per table).

Rows are sampled on a clock (exchange time), not on stream arrivals:
  * Events of one symbol are taken in canonical order: exchange time, then kind
    (gap < trade < depth < top_of_book), then arrival order. The service's row clock
    (inference/domain/rowclock.py) restores that order from the three topics; `canonical_order` sorts a table.
  * Row boundaries are the multiples of `row_interval_ms` of exchange time. The row of boundary B is
    made of the events strictly before B: the latest two-sided top of book, the latest depth update and
    every trade in [B - interval, B). It is closed by the first event at or after B (or by the row
    clock when time passes B), so a quiet stream never holds it.
  * A segment starts at its first event; its first boundary is the first multiple after that event. A
    boundary before the first top of book makes no row. A row is *emitted* once `warmup_rows` rows came
    before it in its segment and a depth update has been seen (the warm-up gate).
  * A gap marker closes the boundaries up to its time and ends the segment: all state is dropped.
Rolling windows and EMAs count rows, so a window of 60 rows is 60 intervals of time.

The event-to-row aggregation is written twice (per event online, vectorised offline); the arithmetic
of a row from its inputs is one function (`RowMath`), so both builders give the same float64 bits.
This module does no I/O: the service, the trainer and the backtester all import it.

The pieces live apart (feature_spec.py: what a row is; row_math.py: its arithmetic; offline_features.py:
the vectorised builder); this module holds the online builder and re-exports the rest, so callers keep
importing from `quantumedge.inference.domain.features`.
"""

from __future__ import annotations

from quantumedge.inference.domain.feature_spec import (
    BPS,
    DEFAULT_CONFIG,
    FEATURE_SCHEMA,
    FEATURE_VERSION,
    IDX_HIGH_VOL,
    IDX_SPREAD,
    IDX_TREND_DIR,
    IDX_VOL_SHORT,
    KIND_RANK,
    FeatureConfig,
    FeatureSchema,
    feature_names,
    make_schema,
    regime_of,
)
from quantumedge.inference.domain.offline_features import OfflineFeatures, build_offline, canonical_order
from quantumedge.inference.domain.row_math import FeatureRow, RowMath, make_row
from quantumedge.v1 import market_pb2

__all__ = [
    "BPS",
    "DEFAULT_CONFIG",
    "FEATURE_SCHEMA",
    "FEATURE_VERSION",
    "IDX_HIGH_VOL",
    "IDX_SPREAD",
    "IDX_TREND_DIR",
    "IDX_VOL_SHORT",
    "KIND_RANK",
    "FeatureConfig",
    "FeatureRow",
    "FeatureSchema",
    "OfflineFeatures",
    "OnlineFeatures",
    "build_offline",
    "canonical_order",
    "feature_names",
    "make_schema",
    "regime_of",
]


class _SymbolState:
    """One symbol's segment: the row clock, the latest book inputs and the trades of the open row."""

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.math = RowMath(cfg)
        self.next_boundary = 0  # 0 = the segment has not started
        self.tob: tuple[float, float, float, float] | None = None
        self.depth: tuple = ()
        self.n_trades = 0
        self.buy = self.sell = self.notional = 0.0

    @property
    def warmed_up(self) -> bool:
        return self.math.rows > self.cfg.warmup_rows and bool(self.depth)

    def start(self, time_ns: int) -> None:
        if not self.next_boundary:
            step = self.cfg.interval_ns
            self.next_boundary = (time_ns // step + 1) * step

    def close_until(self, symbol: str, time_ns: int) -> list[FeatureRow]:
        """Close every boundary at or before `time_ns`; the emitted rows, oldest first."""
        out: list[FeatureRow] = []
        step = self.cfg.interval_ns
        while self.next_boundary and self.next_boundary <= time_ns:
            boundary = self.next_boundary
            self.next_boundary = boundary + step
            trades = (self.n_trades, self.buy, self.sell, self.notional)
            self.n_trades = 0
            self.buy = self.sell = self.notional = 0.0
            if self.tob is None:
                continue  # no two-sided book yet: no row
            values = self.math.push(self.tob, self.depth, trades)
            if values is not None:
                out.append(make_row(symbol, boundary, self.tob, values))
        return out

    def on_trade(self, price: float, qty: float, buyer_is_maker: bool) -> None:
        self.n_trades += 1
        if buyer_is_maker:
            self.sell += qty
        else:
            self.buy += qty
        self.notional += price * qty

    def on_depth(self, bids, asks) -> None:  # sequences of objects with .price and .quantity
        k1, k2 = self.cfg.depth_levels
        b1 = b2 = a1 = a2 = bn = an = 0.0
        for i, lv in enumerate(bids[:k2]):
            q = lv.quantity
            if i < k1:
                b1 += q
            b2 += q
            bn += lv.price * q
        for i, lv in enumerate(asks[:k2]):
            q = lv.quantity
            if i < k1:
                a1 += q
            a2 += q
            an += lv.price * q
        self.depth = (b1, b2, a1, a2, bn + an)


class OnlineFeatures:
    """Per-symbol incremental state. `update(event)` returns the rows the event's time closes (usually
    none or one), computed before the event is applied; `close_until` closes rows when time passes."""

    def __init__(self, config: FeatureConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.schema = make_schema(config)
        self._states: dict[str, _SymbolState] = {}

    def state(self, symbol: str) -> _SymbolState:
        st = self._states.get(symbol)
        if st is None:
            st = self._states[symbol] = _SymbolState(self.config)
        return st

    def reset(self, symbol: str) -> None:
        self._states.pop(symbol, None)

    def warmed_up(self, symbol: str) -> bool:
        st = self._states.get(symbol)
        return bool(st and st.warmed_up)

    def close_until(self, symbol: str, time_ns: int) -> list[FeatureRow]:
        st = self._states.get(symbol)
        return st.close_until(symbol, time_ns) if st is not None else []

    def update(self, event: market_pb2.MarketEvent) -> list[FeatureRow]:
        kind = event.WhichOneof("payload")
        symbol, t = event.symbol, event.exchange_time_ns
        if kind == "gap":
            rows = self.close_until(symbol, t)
            self.reset(symbol)
            return rows
        st = self.state(symbol)
        rows = st.close_until(symbol, t)
        st.start(t)
        if kind == "top_of_book":
            b = event.top_of_book
            if b.bid_price > 0 and b.ask_price > 0:  # an empty side has no mid: the row keeps the last book
                st.tob = (b.bid_price, b.bid_quantity, b.ask_price, b.ask_quantity)
        elif kind == "trade":
            tr = event.trade
            st.on_trade(tr.price, tr.quantity, tr.buyer_is_maker)
        elif kind == "depth":
            st.on_depth(event.depth.bids, event.depth.asks)
        return rows
