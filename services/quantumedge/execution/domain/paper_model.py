"""The paper venue's market model: its configuration, the book it matches against, queue position and
commissions (pure: no I/O). The simulator in paper.py is the order side of the same venue."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from quantumedge.execution.domain.filters import split_symbol
from quantumedge.execution.domain.orders import ZERO, OrderRequest, Side, dec

BPS = Decimal(10_000)
INF = Decimal("Infinity")
EIGHT = Decimal("0.00000001")  # Binance states asset amounts to 8 decimals
POST_ONLY_REJECT = ("-2010", "Order would immediately match and take.")
FeeAsset = Literal["received", "quote", "bnb"]


@dataclass(frozen=True)
class PaperConfig:
    maker_fee_bps: Decimal = Decimal(10)
    taker_fee_bps: Decimal = Decimal(10)
    # Order-entry latency on the market's clock: from send to the venue's matching engine.
    latency_ns: int = 0
    slippage_bps: Decimal = ZERO
    # Resting limits wait for the volume ahead of them at their price before trades there fill them.
    queue_position: bool = False
    # Commission asset: "received" is Binance's rule (a buy pays in the base asset, a sell in the quote);
    # "quote" always in the quote asset; "bnb" in BNB at `bnb_discount` off, valued at `bnb_price` quote.
    fee_asset: FeeAsset = "quote"
    bnb_discount: Decimal = Decimal("0.25")
    bnb_price: Decimal = Decimal(600)


@dataclass
class PaperBook:
    top: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
    last_trade: Decimal = ZERO
    last_buyer_is_maker: bool = False
    # Liquidity our takers consumed since the last book update, per (side of book, price).
    consumed: dict[tuple[str, Decimal], Decimal] = field(default_factory=dict)
    # Depth arrives as floats and turns into Decimal (dec, as before) only when something reads the book:
    # most events meet no resting order, and every level's repr + Decimal was the venue's biggest cost.
    _raw_depth: tuple[list[tuple[float, float]], list[tuple[float, float]]] | None = None
    _depth: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] = field(
        default_factory=lambda: ([], [])
    )
    _sides: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] | None = field(
        default_factory=lambda: ([], [])
    )

    def set_depth(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """A depth snapshot's levels as (price, quantity) floats; converted on first read."""
        self._raw_depth = (bids, asks)

    @property
    def depth_bids(self) -> list[tuple[Decimal, Decimal]]:
        return self._depth_levels()[0]

    @property
    def depth_asks(self) -> list[tuple[Decimal, Decimal]]:
        return self._depth_levels()[1]

    def _depth_levels(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        if self._raw_depth is not None:
            bids, asks = self._raw_depth
            self._depth = ([(dec(p), dec(q)) for p, q in bids], [(dec(p), dec(q)) for p, q in asks])
            self._raw_depth = None
        return self._depth

    def rebuild(self) -> None:
        """Top of book first, then depth levels strictly behind it (built when first read)."""
        self.consumed.clear()
        self._sides = None

    @property
    def bids(self) -> list[tuple[Decimal, Decimal]]:
        return self._book_sides()[0]

    @property
    def asks(self) -> list[tuple[Decimal, Decimal]]:
        return self._book_sides()[1]

    def _book_sides(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        if self._sides is None:
            depth_bids, depth_asks = self._depth_levels()
            if self.top is None:
                self._sides = (list(depth_bids), list(depth_asks))
            else:
                bid, bid_q, ask, ask_q = self.top
                bids = ([(bid, bid_q)] if bid and bid_q else []) + [lv for lv in depth_bids if lv[0] < bid]
                asks = ([(ask, ask_q)] if ask and ask_q else []) + [lv for lv in depth_asks if not ask or lv[0] > ask]
                self._sides = (bids, asks)
        return self._sides

    def levels(self, taker_side: Side) -> list[tuple[Decimal, Decimal]]:
        return self.asks if taker_side is Side.BUY else self.bids

    def available(self, taker_side: Side, price: Decimal, quantity: Decimal) -> Decimal:
        return max(ZERO, quantity - self.consumed.get((taker_side.name, price), ZERO))

    @property
    def mid(self) -> Decimal:
        if self.bids and self.asks:
            return (self.bids[0][0] + self.asks[0][0]) / 2
        return self.last_trade


def visible_at(book: PaperBook, req: OrderRequest) -> Decimal:
    """The book's quantity at the order's price on the order's own side: 0 for an empty level inside
    the visible book (or a new best price), INF beyond what the feed shows."""
    levels = book.bids if req.side is Side.BUY else book.asks
    for price, quantity in levels:
        if price == req.price:
            return quantity
    if not levels:
        return INF
    worst = levels[-1][0]
    inside = req.price > worst if req.side is Side.BUY else req.price < worst
    return ZERO if inside else INF


def commission(
    config: PaperConfig, req: OrderRequest, price: Decimal, quantity: Decimal, rate_bps: Decimal
) -> tuple[Decimal, str, Decimal, Decimal]:
    """(fee, its asset, its value in quote, the part taken from the base asset) for one fill."""
    base, quote = split_symbol(req.symbol)
    mode = config.fee_asset
    if mode == "received" and req.side is Side.BUY:
        # Binance charges the asset the trade gives you: a buy's commission comes out of the base bought.
        base_fee = (quantity * rate_bps / BPS).quantize(EIGHT)
        return base_fee, base, base_fee * price, base_fee
    in_quote = price * quantity * rate_bps / BPS
    if mode == "bnb":
        valued = in_quote * (1 - config.bnb_discount)
        return (valued / config.bnb_price).quantize(EIGHT), "BNB", valued, ZERO
    return in_quote, quote, in_quote, ZERO
