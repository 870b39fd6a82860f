"""The one check of every value that crosses a boundary (bus, venue, RPC) before any state takes it.

Pure: no I/O, no clock. Each check returns the first Problem (a reason code and the field it names) or None.
One non-finite price once made risk's equity NaN for good, and one absurd trade poisoned inference's EMAs:
so prices and quantities are finite and > 0, money is finite and of a sane size, times fit a sane epoch
window (2^63-1 overflowed a deadline), and a price far off the last good one for its symbol is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from google.protobuf.message import Message

from quantumedge.v1 import execution_pb2, market_pb2, risk_pb2, signal_pb2

# Reason codes (dead letters carry them; tests assert on them).
NON_FINITE = "non_finite"
NOT_POSITIVE = "not_positive"
OUT_OF_RANGE = "out_of_range"
BAD_TIME = "bad_time"
PRICE_JUMP = "price_jump"
TOO_LONG = "too_long"

MIN_PRICE = 1e-12
MAX_PRICE = 1e9  # no spot pair quotes a billion per unit; 1e300 is a bug or an attack
MAX_QUANTITY = 1e13
MAX_MONEY = 1e13  # |PnL|, equity, fees, notional in quote currency
MAX_BPS = 1e6
MIN_TIME_NS = 946_684_800 * 10**9  # 2000-01-01: anything older is not a timestamp of this system
MAX_TIME_NS = 4_102_444_800 * 10**9  # 2100-01-01: far below int64's end, so deadlines can be added safely
MAX_DURATION_NS = 366 * 86_400 * 10**9  # time stops, TTLs
MAX_JUMP = 10.0  # a price 10x (or 1/10) off the last good one for its symbol is not a market move
# ...unless the feed keeps to that level: this many refused prices in a row, all within REANCHOR_BAND of the
# first of them, show the anchor was the bad price (a few seconds of a live feed; one outlier never does).
REANCHOR_AFTER = 50
REANCHOR_BAND = 0.01
MAX_TEXT = 1024  # reasons and other operator text
MAX_ID = 128  # ids, symbols, request ids


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str


def number(field: str, value: float | Decimal, *, low: float, high: float, positive: bool = False) -> Problem | None:
    """Finite, within [low, high]; with positive, also > 0."""
    try:
        v = float(value)
    except (ValueError, ArithmeticError):  # a signalling Decimal NaN does not even convert
        v = math.nan
    if not math.isfinite(v):
        return Problem(NON_FINITE, f"{field} is {value}")
    if positive and v <= 0:
        return Problem(NOT_POSITIVE, f"{field} must be > 0, got {v:g}")
    if not low <= v <= high:
        return Problem(OUT_OF_RANGE, f"{field} = {v:g} outside [{low:g}, {high:g}]")
    return None


def price(field: str, value: float | Decimal, optional: bool = False) -> Problem | None:
    """A price: > 0 and below MAX_PRICE; optional prices may be 0 (unset)."""
    if optional and _is_zero(value):
        return None
    return number(field, value, low=MIN_PRICE, high=MAX_PRICE, positive=True)


def quantity(field: str, value: float | Decimal, optional: bool = False, signed: bool = False) -> Problem | None:
    if signed:
        return number(field, value, low=-MAX_QUANTITY, high=MAX_QUANTITY)
    if optional and _is_zero(value):
        return None
    return number(field, value, low=0.0, high=MAX_QUANTITY, positive=not optional)


def _is_zero(value: float | Decimal) -> bool:
    try:
        return value == 0
    except ArithmeticError:
        return False


def money(field: str, value: float, non_negative: bool = False) -> Problem | None:
    return number(field, value, low=0.0 if non_negative else -MAX_MONEY, high=MAX_MONEY)


def time_ns(field: str, value: int, optional: bool = True) -> Problem | None:
    """An epoch time in ns within [2000, 2100); optional times may be 0 (unset)."""
    if optional and value == 0:
        return None
    if not MIN_TIME_NS <= value < MAX_TIME_NS:
        return Problem(BAD_TIME, f"{field} = {value} is not a time between 2000 and 2100")
    return None


def duration_ns(field: str, value: int) -> Problem | None:
    if not 0 <= value <= MAX_DURATION_NS:
        return Problem(BAD_TIME, f"{field} = {value} ns outside [0, {MAX_DURATION_NS}]")
    return None


def text(field: str, value: str, max_len: int = MAX_TEXT) -> Problem | None:
    if len(value) > max_len:
        return Problem(TOO_LONG, f"{field} is {len(value)} characters (at most {max_len})")
    return None


def first(*problems: Problem | None) -> Problem | None:
    return next((p for p in problems if p is not None), None)


# -- messages ----------------------------------------------------------------------------------------
def check_market(event: market_pb2.MarketEvent) -> Problem | None:
    kind = event.WhichOneof("payload")
    found = first(
        text("symbol", event.symbol, MAX_ID),
        time_ns("exchange_time_ns", event.exchange_time_ns),
        time_ns("receive_time_ns", event.receive_time_ns),
    )
    if found or kind is None or kind == "gap":
        return found
    if kind == "trade":
        return first(price("trade.price", event.trade.price), quantity("trade.quantity", event.trade.quantity))
    if kind == "top_of_book":
        t = event.top_of_book
        return first(
            price("top_of_book.bid_price", t.bid_price, optional=True),
            price("top_of_book.ask_price", t.ask_price, optional=True),
            quantity("top_of_book.bid_quantity", t.bid_quantity, optional=True),
            quantity("top_of_book.ask_quantity", t.ask_quantity, optional=True),
        )
    levels = [("depth.bids", lv) for lv in event.depth.bids] + [("depth.asks", lv) for lv in event.depth.asks]
    # A level's quantity 0 is Binance's "remove this level"; its price must still be a price.
    return first(
        *(first(price(f"{s}.price", lv.price), quantity(f"{s}.quantity", lv.quantity, True)) for s, lv in levels)
    )


def market_prices(event: market_pb2.MarketEvent) -> list[tuple[str, float]]:
    """The prices of an event that the jump check compares with the last good one."""
    kind = event.WhichOneof("payload")
    if kind == "trade":
        return [("trade.price", event.trade.price)]
    if kind == "top_of_book":
        t = event.top_of_book
        return [(n, p) for n, p in (("bid_price", t.bid_price), ("ask_price", t.ask_price)) if p > 0]
    if kind == "depth":
        return [(f"depth.{s}.price", lv.price) for s in ("bids", "asks") for lv in getattr(event.depth, s)[:1]]
    return []


def check_signal(signal: signal_pb2.Signal) -> Problem | None:
    found = first(
        text("signal_id", signal.signal_id, MAX_ID),
        text("symbol", signal.symbol, MAX_ID),
        time_ns("event_time_ns", signal.event_time_ns),
        time_ns("created_time_ns", signal.created_time_ns),
        number("edge", signal.edge, low=-1.0, high=1.0),
        number("confidence", signal.confidence, low=0.0, high=1.0),
        price("mid_price", signal.mid_price, optional=True),
        number("spread_bps", signal.spread_bps, low=0.0, high=MAX_BPS),
        number("drift_psi", signal.drift_psi, low=-MAX_BPS, high=MAX_BPS),
        number("volatility_bps", signal.volatility_bps, low=0.0, high=MAX_BPS),
        number("row_interval_s", signal.row_interval_s, low=0.0, high=MAX_DURATION_NS / 1e9),
    )
    for i, p in enumerate(signal.predictions):
        found = found or first(
            number(f"predictions[{i}].p_up", p.p_up, low=0.0, high=1.0),
            number(f"predictions[{i}].expected_return_bps", p.expected_return_bps, low=-MAX_BPS, high=MAX_BPS),
        )
    return found


def check_intent(intent: risk_pb2.OrderIntent, prefix: str = "intent.") -> Problem | None:
    return first(
        text(f"{prefix}intent_id", intent.intent_id, MAX_ID),
        text(f"{prefix}symbol", intent.symbol, MAX_ID),
        text(f"{prefix}signal_id", intent.signal_id, MAX_ID),
        quantity(f"{prefix}quantity", intent.quantity),
        price(f"{prefix}limit_price", intent.limit_price, optional=True),
        price(f"{prefix}take_profit_price", intent.take_profit_price, optional=True),
        price(f"{prefix}stop_loss_price", intent.stop_loss_price, optional=True),
        price(f"{prefix}reference_price", intent.reference_price, optional=True),
        number(f"{prefix}trailing_stop_bps", intent.trailing_stop_bps, low=0.0, high=10_000.0),
        duration_ns(f"{prefix}time_stop_ns", intent.time_stop_ns),
        duration_ns(f"{prefix}entry_ttl_ns", intent.entry_ttl_ns),
        time_ns(f"{prefix}created_time_ns", intent.created_time_ns),
    )


def check_decision(decision: risk_pb2.RiskDecision) -> Problem | None:
    found = time_ns("decided_time_ns", decision.decided_time_ns)
    if found or not decision.approved or not decision.HasField("intent"):
        return found
    return check_intent(decision.intent)


def check_report(report: execution_pb2.ExecutionReport) -> Problem | None:
    found = first(
        time_ns("time_ns", report.time_ns),
        money("realized_pnl_delta", report.realized_pnl_delta),
        money("fee_delta", report.fee_delta),
        money("equity", report.equity, non_negative=True),
    )
    if found:
        return found
    if report.HasField("fill"):
        f = report.fill
        found = first(
            price("fill.price", f.price),
            quantity("fill.quantity", f.quantity),
            number("fill.fee", f.fee, low=-MAX_MONEY, high=MAX_MONEY),
            money("fill.fee_quote", f.fee_quote),
            quantity("fill.base_fee", f.base_fee, optional=True),
            time_ns("fill.time_ns", f.time_ns),
        )
    if not found and report.HasField("position"):
        p = report.position
        found = first(
            quantity("position.quantity", p.quantity, signed=True),
            quantity("position.dust_quantity", p.dust_quantity, signed=True),
            price("position.average_price", p.average_price, optional=True),
            price("position.mark_price", p.mark_price, optional=True),
            money("position.realized_pnl", p.realized_pnl),
            money("position.unrealized_pnl", p.unrealized_pnl),
            money("position.fees", p.fees),
        )
    if not found and report.HasField("order"):
        o = report.order
        found = first(
            quantity("order.quantity", o.quantity, optional=True),
            quantity("order.filled_quantity", o.filled_quantity, optional=True),
            price("order.price", o.price, optional=True),
            price("order.average_price", o.average_price, optional=True),
            duration_ns("order.time_stop_ns", o.time_stop_ns),
        )
    return found


def check_request(message: Message, prefix: str = "") -> Problem | None:
    """Every string of an RPC request bounded in size, every float finite and of a sane size (nested too).

    The per-method checks (a price > 0, a known side) come after this; this one keeps a 1 MB reason or an
    inf out of everything that would store, sign or publish it."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        values = list(value) if field.is_repeated else [value]
        for v in values:
            if field.type == field.TYPE_MESSAGE:
                found = None if isinstance(v, str) else check_request(v, f"{name}.")
            elif field.type == field.TYPE_STRING:
                found = text(name, v)
            elif field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
                found = number(name, v, low=-MAX_MONEY, high=MAX_MONEY)
            else:
                found = None
            if found:
                return found
    return None


_CHECKS = {
    market_pb2.MarketEvent: check_market,
    signal_pb2.Signal: check_signal,
    risk_pb2.RiskDecision: check_decision,
    execution_pb2.ExecutionReport: check_report,
}


def check(message: Message) -> Problem | None:
    """The check for a consumed message by its type (None for types with no numbers to check)."""
    fn = _CHECKS.get(type(message))
    return fn(message) if fn is not None else None  # type: ignore[operator]


class LastGood:
    """The last good price per symbol: a price more than MAX_JUMP times off it is refused, not a new normal.

    A gap marker (or reset) forgets the symbol, so a feed that restarts after a real move re-anchors. So does
    a level the feed keeps to: when the anchor itself was wrong (a poisoned first price), every true price
    after it is "a jump"; `reanchor_after` consecutive refused prices that agree with each other (within
    REANCHOR_BAND) become the new anchor, while one outlier, or outliers that disagree, never do."""

    def __init__(self, max_jump: float = MAX_JUMP, reanchor_after: int = REANCHOR_AFTER) -> None:
        self.max_jump = max_jump
        self.reanchor_after = reanchor_after
        self.prices: dict[str, float] = {}
        self._candidate: dict[str, tuple[float, int]] = {}  # symbol -> (level the refused prices keep to, count)
        self.reanchored = 0

    def check(self, symbol: str, prices: list[tuple[str, float]]) -> Problem | None:
        last = self.prices.get(symbol)
        if last is None:
            return None
        for field, value in prices:
            ratio = value / last
            if not 1.0 / self.max_jump <= ratio <= self.max_jump:
                if self._persistent(symbol, value):
                    return None  # the anchor was the outlier: accept() moves it here
                return Problem(PRICE_JUMP, f"{field} = {value:g} is {ratio:.3g}x the last good {last:g} for {symbol}")
        return None

    def _persistent(self, symbol: str, value: float) -> bool:
        level, count = self._candidate.get(symbol, (value, 0))
        count = count + 1 if abs(value / level - 1.0) <= REANCHOR_BAND else 1
        level = level if count > 1 else value
        if count >= self.reanchor_after:
            self._candidate.pop(symbol, None)
            self.reanchored += 1
            return True
        self._candidate[symbol] = (level, count)
        return False

    def accept(self, symbol: str, prices: list[tuple[str, float]]) -> None:
        if prices:
            self.prices[symbol] = prices[-1][1]
            # A price within bounds of the anchor breaks any run of refused ones.
            self._candidate.pop(symbol, None)

    def forget(self, symbol: str) -> None:
        self.prices.pop(symbol, None)
        self._candidate.pop(symbol, None)


class MarketGuard:
    """check_market plus the jump check against this consumer's last good prices: one call per event."""

    def __init__(self, max_jump: float = MAX_JUMP) -> None:
        self.last = LastGood(max_jump)

    def admit(self, event: market_pb2.MarketEvent) -> Problem | None:
        found = check_market(event)
        if found:
            return found
        if event.WhichOneof("payload") == "gap":
            self.last.forget(event.symbol)
            return None
        prices = market_prices(event)
        found = self.last.check(event.symbol, prices)
        if found is None:
            self.last.accept(event.symbol, prices)
        return found


__all__ = [
    "BAD_TIME",
    "NON_FINITE",
    "NOT_POSITIVE",
    "OUT_OF_RANGE",
    "PRICE_JUMP",
    "REANCHOR_AFTER",
    "TOO_LONG",
    "LastGood",
    "MarketGuard",
    "Problem",
    "check",
    "check_decision",
    "check_intent",
    "check_market",
    "check_report",
    "check_request",
    "check_signal",
]
