"""Order state machine, fills and positions: pure domain code (no I/O), shared with the backtester.

Quantities and prices are Decimal so fills add up exactly; floats appear only at the protobuf edge.
Enum values equal the protobuf enum numbers, so conversion is int().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import IntEnum

ZERO = Decimal(0)


def dec(value: float | int | str | Decimal | None) -> Decimal:
    """A float from a protobuf or JSON as the Decimal a human would write (0.1 -> Decimal('0.1'))."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


class Side(IntEnum):
    BUY = 1
    SELL = 2

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(IntEnum):
    MARKET = 1
    LIMIT = 2


class TimeInForce(IntEnum):
    UNSPECIFIED = 0
    GTC = 1
    IOC = 2
    FOK = 3


class OrderRole(IntEnum):
    UNSPECIFIED = 0
    ENTRY = 1
    EXIT = 2
    TAKE_PROFIT = 3
    STOP_LOSS = 4


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 4
    REJECTED = 5
    EXPIRED = 6
    # Sent (or about to be sent), result not known yet: resolved by querying the venue before any retry.
    PENDING = 7

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def open(self) -> bool:
        return self not in TERMINAL


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})

# Legal status changes. Fills move PENDING/NEW/PARTIALLY_FILLED forward on their own (apply_fill);
# a terminal status never changes again.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.NEW,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.NEW: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}),
}


class OrderError(ValueError):
    """Base of the domain's consistency errors."""


class IllegalTransition(OrderError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    def __init__(self, client_order_id: str, current: OrderStatus, wanted: OrderStatus) -> None:
        super().__init__(f"order {client_order_id}: illegal transition {current.name} -> {wanted.name}")
        self.current = current
        self.wanted = wanted


class OverfillError(OrderError):
    pass


@dataclass(frozen=True)
class Fill:
    client_order_id: str
    trade_id: str
    price: Decimal
    quantity: Decimal
    # Commission as charged, in fee_asset.
    fee: Decimal = ZERO
    fee_asset: str = ""
    # The commission valued in the quote asset (what PnL uses).
    fee_quote: Decimal = ZERO
    # Commission taken in the base asset: the position grows by quantity - base_fee on a buy.
    base_fee: Decimal = ZERO
    is_maker: bool = False
    time_ns: int = 0


def value_fee(
    fee: Decimal, fee_asset: str, price: Decimal, base_asset: str, quote_asset: str
) -> tuple[Decimal, Decimal]:
    """(fee in quote, fee in base) for a commission charged in fee_asset at fill price `price`.

    A third asset (e.g. BNB) cannot be valued here without its price: it counts as 0 in PnL.
    """
    if not fee or not fee_asset:
        return ZERO, ZERO
    if fee_asset == quote_asset:
        return fee, ZERO
    if fee_asset == base_asset:
        return fee * price, fee
    return ZERO, ZERO


@dataclass
class Order:
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal = ZERO
    stop_price: Decimal = ZERO
    time_in_force: TimeInForce = TimeInForce.UNSPECIFIED
    role: OrderRole = OrderRole.ENTRY
    # Post-only (Binance LIMIT_MAKER): a maker or nothing. Take-profit legs are post-only by their role.
    post_only: bool = False
    intent_id: str = ""
    group_id: str = ""
    parent_client_order_id: str = ""
    venue: str = ""
    venue_order_id: str = ""
    status: OrderStatus = OrderStatus.PENDING
    filled_quantity: Decimal = ZERO
    filled_quote: Decimal = ZERO
    fees: Decimal = ZERO
    base_fees: Decimal = ZERO
    reject_code: str = ""
    reject_message: str = ""
    created_time_ns: int = 0
    updated_time_ns: int = 0
    # Protection requested for an entry (from the intent) and whether it has been placed.
    take_profit_price: Decimal = ZERO
    stop_loss_price: Decimal = ZERO
    trailing_stop_bps: Decimal = ZERO
    time_stop_ns: int = 0
    time_stop_deadline_ns: int = 0
    protection_placed: bool = False
    # A resting entry still open at this venue time is cancelled (0 = never).
    expire_time_ns: int = 0
    # Quantity a reconciled stand-in fill (at the venue's average price) counted before the real trades
    # were seen: those trades, arriving later under their own ids, use it up instead of counting twice.
    synthetic_credit: Decimal = ZERO
    # A trailing stop's ratchet (best trade price since it rested), kept so a simulated venue's restart
    # resumes the stop where it stood.
    trailing_peak: Decimal = ZERO
    # Entry: the quantity its protection covers (grows while a GTC entry fills) and the protection's
    # generation (bumped when it is placed again for what an exit left).
    protected_quantity: Decimal = ZERO
    protection_generation: int = 0
    # The first failed exit of a symbol carries the retry schedule: attempts so far, next venue time (0 = none).
    exit_retry_attempts: int = 0
    exit_retry_due_ns: int = 0
    # Venue time (ms) the last submission was signed with; a late copy cannot execute after it + recvWindow.
    sent_time_ms: int = 0
    # Venue time the submission's outcome became unknown (timeout, 5xx, -1006/-1007) and its code: such an
    # order is never sent again; it stays PENDING until the venue tells its fate.
    outcome_unknown_since_ns: int = 0
    outcome_unknown_code: str = ""
    # Persisted PENDING could not be flushed (the broker was down), so it was never sent: the intent's next
    # delivery sends it (same client order id); never persisted, so a restart resolves it as never sent.
    unsent: bool = False
    trade_ids: set[str] = field(default_factory=set)
    version: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def average_price(self) -> Decimal:
        return self.filled_quote / self.filled_quantity if self.filled_quantity else ZERO

    @property
    def is_open(self) -> bool:
        return self.status.open

    @property
    def awaiting_send(self) -> bool:
        """Persisted PENDING was never acknowledged by the broker, so never sent, and nothing resolved it since."""
        return self.unsent and self.status is OrderStatus.PENDING

    @property
    def outcome_unknown(self) -> bool:
        """Sent, and the venue has not yet told what became of it."""
        return self.status is OrderStatus.PENDING and self.outcome_unknown_since_ns > 0

    @property
    def wants_protection(self) -> bool:
        return self.role is OrderRole.ENTRY and bool(
            self.take_profit_price or self.stop_loss_price or self.trailing_stop_bps or self.time_stop_ns
        )

    def transition(self, status: OrderStatus, time_ns: int = 0) -> bool:
        """Move to `status`; False when already there, IllegalTransition when the machine forbids it."""
        if status == self.status:
            return False
        if status not in TRANSITIONS.get(self.status, frozenset()):
            raise IllegalTransition(self.client_order_id, self.status, status)
        if status is OrderStatus.FILLED and self.filled_quantity != self.quantity:
            # FILLED is a fact about the fills; apply them first (the engine fetches the missing ones).
            raise OrderError(
                f"order {self.client_order_id}: FILLED with {self.filled_quantity} of {self.quantity} filled"
            )
        self.status = status
        self._touch(time_ns)
        return True

    def apply_fill(self, fill: Fill) -> bool:
        """Add one fill; False for a trade already applied (redelivered), OverfillError past the quantity.

        A fill may arrive after CANCELED/EXPIRED (it happened before the cancel but was reported after
        it): it is counted and the status stays terminal. A rejected or filled order takes no fill.
        """
        if fill.trade_id in self.trade_ids:
            return False
        if fill.quantity <= 0:
            raise OrderError(f"order {self.client_order_id}: fill quantity {fill.quantity} must be positive")
        if self.status in (OrderStatus.REJECTED, OrderStatus.FILLED):
            if self.status is OrderStatus.FILLED:
                raise OverfillError(f"order {self.client_order_id}: fill {fill.trade_id} after FILLED")
            raise IllegalTransition(self.client_order_id, self.status, OrderStatus.PARTIALLY_FILLED)
        if self.filled_quantity + fill.quantity > self.quantity:
            raise OverfillError(f"order {self.client_order_id}: fill {fill.quantity} over remaining {self.remaining}")
        self.trade_ids.add(fill.trade_id)
        self.filled_quantity += fill.quantity
        self.filled_quote += fill.price * fill.quantity
        self.fees += fill.fee_quote
        self.base_fees += fill.base_fee
        if self.status.open:
            self.status = OrderStatus.FILLED if self.filled_quantity == self.quantity else OrderStatus.PARTIALLY_FILLED
        self._touch(fill.time_ns)
        return True

    def reject(self, code: str, message: str, time_ns: int = 0) -> None:
        self.reject_code = code
        self.reject_message = message
        self.transition(OrderStatus.REJECTED, time_ns)

    def _touch(self, time_ns: int) -> None:
        self.version += 1
        if time_ns:
            self.updated_time_ns = max(self.updated_time_ns, time_ns)

    # Changes the engine makes: each is one new version (one report id), as the state record needs.
    def resize(self, quantity: Decimal, price: Decimal | None = None) -> None:
        """Size (and price) fitted to the venue's filters before the first send: no version of its own."""
        self.quantity = quantity
        if price is not None:
            self.price = price

    def learn_venue_order_id(self, venue_order_id: str) -> None:
        self.venue_order_id = venue_order_id

    def note_reject(self, code: str, message: str) -> None:
        """The venue's reason, kept before its REJECTED is applied (empty values keep what is known)."""
        self.reject_code = code or self.reject_code
        self.reject_message = message or self.reject_message

    def joins_list(self, group_id: str, sent_time_ms: int) -> None:
        """An OCO leg about to be sent with its list: no version of its own (its first report says so)."""
        self.group_id = group_id
        self.sent_time_ms = sent_time_ms

    def sending(self, sent_time_ms: int, time_ns: int) -> None:
        self.sent_time_ms = sent_time_ms
        self._touch(time_ns)

    def outcome_became_unknown(self, since_ns: int, code: str, time_ns: int) -> None:
        """Sent, and the venue's answer is lost: the first moment is kept, the latest code replaces."""
        self.outcome_unknown_since_ns = self.outcome_unknown_since_ns or since_ns
        self.outcome_unknown_code = code
        self._touch(time_ns)

    def record_alert(self, time_ns: int) -> None:
        """A new version with nothing changed, so the alert's report has an id of its own."""
        self._touch(time_ns)

    def begin_protection(self, deadline_ns: int, time_ns: int) -> None:
        """Protection placed for the first time; `deadline_ns` arms the time stop (0 = none)."""
        self.protection_placed = True
        if deadline_ns:
            self.time_stop_deadline_ns = deadline_ns
        self._touch(time_ns)

    def next_protection_generation(self, time_ns: int) -> None:
        """Protection placed again (grown, or for what an exit left): its legs get new ids."""
        self.protection_generation += 1
        self._touch(time_ns)

    def protection_too_small(self, retry_later: bool, time_ns: int) -> None:
        """Nothing placed (below the venue's minimum); a filling entry tries again as it fills more."""
        if retry_later:
            self.protection_placed = False
        self._touch(time_ns)

    def cover(self, quantity: Decimal, time_ns: int) -> None:
        """The quantity the protection being placed covers."""
        self.protected_quantity = quantity
        self._touch(time_ns)

    def clear_time_stop(self, time_ns: int) -> None:
        self.time_stop_deadline_ns = 0
        self._touch(time_ns)

    def ratchet(self, peak: Decimal, time_ns: int) -> None:
        """A trailing stop's new best price."""
        self.trailing_peak = peak
        self._touch(time_ns)

    def schedule_exit_retry(self, attempts: int, due_ns: int, time_ns: int) -> None:
        """The symbol's exit retry schedule, carried by its first failed exit (0, 0 = none)."""
        self.exit_retry_attempts, self.exit_retry_due_ns = attempts, due_ns
        self._touch(time_ns)

    def add_synthetic_credit(self, quantity: Decimal, time_ns: int) -> None:
        self.synthetic_credit += quantity
        self._touch(time_ns)

    def use_synthetic_credit(self, fill: Fill, clock: Callable[[], int]) -> Fill | None:
        """The part of a real trade a reconciled stand-in fill has not counted yet; None when it counted all
        (the trade id is then recorded, so a redelivery is a duplicate). `clock` is read only for a new version."""
        if self.synthetic_credit <= 0 or fill.trade_id.startswith("recon:") or fill.trade_id in self.trade_ids:
            return fill
        covered = min(self.synthetic_credit, fill.quantity)
        self.synthetic_credit -= covered
        if covered == fill.quantity:
            self.trade_ids.add(fill.trade_id)
            self._touch(clock())
            return None
        share = (fill.quantity - covered) / fill.quantity
        return replace(
            fill,
            quantity=fill.quantity - covered,
            fee=fill.fee * share,
            fee_quote=fill.fee_quote * share,
            base_fee=fill.base_fee * share,
        )


@dataclass(frozen=True)
class OrderUpdate:
    """What a venue says about one order: a status, and the fill that caused it when there was one."""

    client_order_id: str
    symbol: str
    status: OrderStatus
    venue_order_id: str = ""
    fill: Fill | None = None
    time_ns: int = 0
    reject_code: str = ""
    reject_message: str = ""
    # Cumulative filled quantity and quote as the venue reports them (0 when unknown).
    executed_quantity: Decimal = ZERO
    executed_quote: Decimal = ZERO
    note: str = ""


@dataclass(frozen=True)
class OrderRequest:
    """One order as a venue receives it (already rounded to the symbol's filters)."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal = ZERO
    time_in_force: TimeInForce = TimeInForce.UNSPECIFIED
    # > 0 with MARKET: a stop-market order (Binance STOP_LOSS) triggered at this price.
    stop_price: Decimal = ZERO
    trailing_stop_bps: Decimal = ZERO
    # Post-only (Binance LIMIT_MAKER): rejected rather than taking liquidity.
    post_only: bool = False

    @classmethod
    def of(cls, order: Order) -> OrderRequest:
        return cls(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            price=order.price,
            time_in_force=order.time_in_force,
            stop_price=order.stop_price,
            trailing_stop_bps=order.trailing_stop_bps if order.role is OrderRole.STOP_LOSS else ZERO,
            post_only=order.post_only or order.role is OrderRole.TAKE_PROFIT,
        )


@dataclass(frozen=True)
class OcoRequest:
    """Take-profit (post-only limit) and stop-loss (stop-market) legs that cancel each other."""

    list_client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    take_profit_client_order_id: str
    take_profit_price: Decimal
    stop_loss_client_order_id: str
    stop_loss_price: Decimal
    trailing_stop_bps: Decimal = ZERO


@dataclass(frozen=True)
class OrderSnapshot:
    """A venue's view of one order (query, open orders), used to resolve unknowns and reconcile."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    status: OrderStatus
    quantity: Decimal
    executed_quantity: Decimal
    executed_quote: Decimal
    price: Decimal = ZERO
    stop_price: Decimal = ZERO
    time_in_force: TimeInForce = TimeInForce.UNSPECIFIED
    venue_order_id: str = ""
    group_id: str = ""
    time_ns: int = 0
