"""What risk knows about the market per symbol: mark, spread, depth and how old they are (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from quantumedge.v1 import common_pb2, market_pb2


@dataclass
class SymbolMarket:
    bid: float = 0.0
    ask: float = 0.0
    book_ns: int = 0
    last_trade: float = 0.0
    trade_ns: int = 0
    bids: list[tuple[float, float]] = field(default_factory=list)
    asks: list[tuple[float, float]] = field(default_factory=list)
    depth_ns: int = 0
    # Market (exchange) time of the newest top of book applied: what a signal's event_time_ns is compared with.
    market_ns: int = 0

    @property
    def mid(self) -> float:
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2.0
        return 0.0

    @property
    def mark(self) -> float:
        """Mid of the book when there is one, else the last trade price, else 0 (unknown)."""
        if self.book_ns and self.mid > 0:
            return self.mid
        return self.last_trade if self.trade_ns else 0.0

    @property
    def mark_ns(self) -> int:
        """Time of the newest event the mark could be derived from (0 = none)."""
        return max(self.book_ns if self.mid > 0 else 0, self.trade_ns)

    @property
    def spread_bps(self) -> float:
        mid = self.mid
        if mid <= 0:
            return float("inf")
        return (self.ask - self.bid) / mid * 10_000.0


class MarketView:
    """Latest top of book, trade and depth per symbol, each stamped with its event time."""

    def __init__(self, freshness_clock: str = "event") -> None:
        self._use_arrival = freshness_clock == "arrival"
        self.symbols: dict[str, SymbolMarket] = {}

    def get(self, symbol: str) -> SymbolMarket:
        return self.symbols.get(symbol) or SymbolMarket()

    def apply(self, event: market_pb2.MarketEvent, arrival_ns: int) -> None:
        """Fold one market event in. A gap marker wipes the symbol: nothing derived across it is trusted."""
        if not event.symbol:
            return
        stamp = arrival_ns if self._use_arrival else (event.receive_time_ns or event.exchange_time_ns or arrival_ns)
        # Never later than it reached us: one event stamped in the future would otherwise freeze the book
        # (older-looking updates refused) and read as fresh however long the feed stays dead.
        stamp = min(stamp, arrival_ns)
        sym = self.symbols.setdefault(event.symbol, SymbolMarket())
        kind = event.WhichOneof("payload")
        if kind == "top_of_book":
            tob = event.top_of_book
            if stamp >= sym.book_ns:
                sym.bid, sym.ask, sym.book_ns = tob.bid_price, tob.ask_price, stamp
                sym.market_ns = max(sym.market_ns, event.exchange_time_ns or event.receive_time_ns)
        elif kind == "trade":
            if stamp >= sym.trade_ns:
                sym.last_trade, sym.trade_ns = event.trade.price, stamp
        elif kind == "depth":
            if stamp >= sym.depth_ns:
                sym.bids = [(lvl.price, lvl.quantity) for lvl in event.depth.bids]
                sym.asks = [(lvl.price, lvl.quantity) for lvl in event.depth.asks]
                sym.depth_ns = stamp
        elif kind == "gap":
            self.symbols[event.symbol] = SymbolMarket()

    def market_ns(self, symbol: str) -> int:
        """Market time of the symbol's book (0 = no book yet)."""
        sym = self.symbols.get(symbol)
        return sym.market_ns if sym is not None else 0

    def data_age_ns(self, symbol: str, now_ns: int) -> int | None:
        """How old the newest mark-bearing event is; None when there never was one."""
        sym = self.symbols.get(symbol)
        if sym is None or sym.mark_ns == 0:
            return None
        return max(0, now_ns - sym.mark_ns)

    def depth_notional(self, symbol: str, side: int, band_bps: float) -> float:
        """Quote notional resting within band_bps of mid on the side an order of `side` would take."""
        sym = self.symbols.get(symbol)
        if sym is None or sym.depth_ns == 0:
            return 0.0
        mid = sym.mid
        if mid <= 0:
            # No top of book: use the depth's own best levels.
            if not sym.bids or not sym.asks:
                return 0.0
            mid = (sym.bids[0][0] + sym.asks[0][0]) / 2.0
        band = mid * band_bps / 10_000.0
        if side == common_pb2.SIDE_BUY:
            return sum(p * q for p, q in sym.asks if p <= mid + band)
        return sum(p * q for p, q in sym.bids if p >= mid - band)
