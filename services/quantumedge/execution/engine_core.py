"""The engine's state and the bookkeeping every part of it shares: its configuration, the emitter of
reports and state records, the order indexes, positions and marks.

ExecutionEngine (engine.py) is this state with its parts mixed in: intake (engine_intake), venue updates
(engine_updates), protection (engine_protection), exits (engine_exits) and recovery (engine_recovery).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from quantumedge.execution import compaction
from quantumedge.execution.convert import fill_to_pb, order_to_pb, position_to_pb
from quantumedge.execution.domain.order_index import OrderIndex
from quantumedge.execution.domain.orders import ZERO, Fill, Order, OrderRole
from quantumedge.execution.domain.positions import Position
from quantumedge.execution.domain.unknown import UnknownOutcomes
from quantumedge.execution.errors import VenueError
from quantumedge.execution.venue_base import Venue
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger
from quantumedge.shared.telemetry import meter, tracer
from quantumedge.v1 import execution_pb2, risk_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings

# One logger for every part of the engine, named as before it was split.
log = get_logger("quantumedge.execution.engine")
_tracer = tracer("execution")
_meter = meter("execution")
_orders_sent = _meter.create_counter("qe.execution.orders_sent", description="orders sent to the venue")
_fills_seen = _meter.create_counter("qe.execution.fills", description="fills applied")
_refused = _meter.create_counter("qe.execution.rejects", description="orders refused locally or by the venue")
_venue_ms = _meter.create_histogram("qe.execution.venue_call", unit="ms", description="venue call duration")


class Emitter(Protocol):
    def report(self, symbol: str, report: execution_pb2.ExecutionReport) -> None: ...

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        """The latest record of `key` on the compacted state topic; None deletes the key (a tombstone)."""

    def flush(self) -> None: ...


class ListEmitter:
    """Keeps everything in lists (tests, backtests)."""

    def __init__(self) -> None:
        self.reports: list[execution_pb2.ExecutionReport] = []
        self.states: list[tuple[str, execution_pb2.ExecutionReport | None]] = []

    def report(self, symbol: str, report: execution_pb2.ExecutionReport) -> None:
        self.reports.append(report)

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        self.states.append((key, record))

    def flush(self) -> None:
        pass


@dataclass
class EngineConfig:
    starting_equity: Decimal = Decimal(10_000)
    symbols: Sequence[str] = ()
    # Position reports caused only by a new mark, at most this often per symbol (market time).
    mark_report_interval_ns: int = 1_000_000_000
    # A PENDING order younger than this is still being sent; older ones are resolved by query.
    pending_grace_ns: int = 2_000_000_000
    # An order whose outcome is unknown is resolved this long (venue clock) before its symbol goes to exits
    # only with an operator alert; longer than the matching engine's own 10 s timeout plus recvWindow.
    unknown_outcome_bound_ns: int = 60_000_000_000
    # Finished orders older than this (engine clock) are tombstoned on execution.state.v1 and forgotten.
    state_retention_ns: int = compaction.DEFAULT_RETENTION_NS
    # Hard caps in quote currency (0 = none, for tests of other rules; the service always sets both).
    max_order_notional: Decimal = ZERO
    max_position_notional: Decimal = ZERO

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """What the service and the backtester both run with."""
        ex = settings.execution
        return cls(
            starting_equity=Decimal(repr(ex.starting_equity)),
            symbols=tuple(dict.fromkeys(settings.symbols)),
            mark_report_interval_ns=ex.mark_report_interval_ms * 1_000_000,
            max_order_notional=Decimal(repr(ex.max_order_notional)),
            max_position_notional=Decimal(repr(ex.max_position_notional)),
            unknown_outcome_bound_ns=int(ex.unknown_outcome_bound_s * 1e9),
        )


POSITION_KEY = "position:"
CAP_ORDER_NOTIONAL = "CAP_ORDER_NOTIONAL"
CAP_POSITION_NOTIONAL = "CAP_POSITION_NOTIONAL"
PROTECTION_OFF_MARKET = "PROTECTION_OFF_MARKET"


class EngineCore:
    def __init__(
        self,
        venue: Venue,
        emitter: Emitter,
        config: EngineConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.emitter = emitter
        self.config = config or EngineConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self.orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        # The exchange time of each symbol's mark: a mark never goes back to an older event, whichever of the
        # three market topics the consumer happened to read last (a trade handled after the newer book).
        self._mark_times: dict[str, int] = {}
        # symbol -> (the floats the last mark came from, its Decimal): most events repeat the last prices.
        self._mark_sources: dict[str, tuple[tuple[float, ...], Decimal]] = {}
        self.halted = False
        self.halt_reason = ""
        # Risk's trading states (control.v1 "state:<scope>", scope "" = the account): REDUCING takes no entries.
        self.trading_states: dict[str, risk_pb2.SymbolTradingState] = {}
        self._last_mark_report: dict[str, int] = {}
        self._awaiting_protection: set[str] = set()
        # Open orders, armed time stops and expiring entries; follows every order change _emit reports.
        self._indexes = OrderIndex()
        # symbol -> (first failed exit's id, attempts so far, when to try again on the venue's clock)
        self._exit_retries: dict[str, tuple[str, int, int]] = {}
        # Seeded: a backtest's retries land at the same market time on every run.
        self._exit_backoff = Backoff(base_s=1.0, cap_s=60.0, rng=random.Random(0))
        self.unknown = UnknownOutcomes(bound_ns=self.config.unknown_outcome_bound_ns)
        self._seq = 0
        self.counters = dict.fromkeys(
            (
                "intents_received",
                "ignored_decisions",
                "orders_placed",
                "fills",
                "rejects",
                "duplicates_ignored",
                "reconciled_differences",
                "unknown_updates",
                "refused_fills",
            ),
            0,
        )

    def _emit(
        self,
        order: Order | None = None,
        fill: Fill | None = None,
        position: Position | None = None,
        realized_delta: Decimal = ZERO,
        fee_delta: Decimal = ZERO,
        note: str = "",
        persist: bool = True,
        alert: str = "",
    ) -> None:
        now = self._clock()
        self._seq += 1
        report = execution_pb2.ExecutionReport(
            time_ns=now,
            realized_pnl_delta=float(realized_delta),
            fee_delta=float(fee_delta),
            equity=float(self.equity()),
            venue=self.venue.name,
            note=note,
            alert=alert,
        )
        if order is not None:
            # Every change of an order is reported here: its indexes follow it in the same step.
            self._indexes.update(order)
            report.order.CopyFrom(order_to_pb(order))
            report.report_id = f"{order.client_order_id}:{order.version}"
        if fill is not None:
            report.fill.CopyFrom(fill_to_pb(fill))
        if position is not None:
            report.position.CopyFrom(position_to_pb(position))
            if order is None:
                report.report_id = f"{POSITION_KEY}{position.symbol}:{now}:{self._seq}"
        symbol = order.symbol if order is not None else position.symbol if position is not None else ""
        self.emitter.report(symbol, report)
        if not persist:
            return
        if order is not None:
            state = execution_pb2.ExecutionReport(report_id=report.report_id, time_ns=now, venue=self.venue.name)
            state.order.CopyFrom(report.order)
            self.emitter.state(order.client_order_id, state)
        if position is not None:
            state = execution_pb2.ExecutionReport(
                report_id=f"{POSITION_KEY}{position.symbol}:{now}:{self._seq}", time_ns=now, venue=self.venue.name
            )
            state.position.CopyFrom(report.position)
            self.emitter.state(f"{POSITION_KEY}{position.symbol}", state)

    def _persist(self, order: Order) -> None:
        """Only the state record (no report): bookkeeping risk has no use for."""
        record = execution_pb2.ExecutionReport(
            report_id=f"{order.client_order_id}:{order.version}", time_ns=self._clock(), venue=self.venue.name
        )
        record.order.CopyFrom(order_to_pb(order))
        self.emitter.state(order.client_order_id, record)

    def _open_orders(self, symbol: str | None = None) -> list[Order]:
        cids = self._indexes.open_ids(symbol)
        return sorted((self.orders[c] for c in cids), key=lambda o: (o.created_time_ns, o.client_order_id))

    def _open_count(self, symbol: str) -> int:
        return self._indexes.open_count(symbol)

    def _position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    def _held(self, symbol: str) -> Decimal:
        """What can be traded of the position: its dust is held, never sold, and never blocks a new trade."""
        position = self.positions.get(symbol)
        return position.tradable_quantity if position else ZERO

    def _closable(self, symbol: str, exclude: str = "") -> Decimal:
        """|position| less what open exit orders (other than `exclude`) are already selling or buying back."""
        working = sum(
            (
                o.quantity - o.filled_quantity
                for o in self._open_orders(symbol)
                if o.role is OrderRole.EXIT and o.client_order_id != exclude
            ),
            ZERO,
        )
        return max(ZERO, abs(self._held(symbol)) - working)

    def _update_dust(self, position: Position) -> None:
        try:
            filters = self.venue.filters(position.symbol)
        except VenueError:
            return  # the venue's filters are unknown for now: keep the last split
        price = self.marks.get(position.symbol) or position.mark_price or position.average_price
        dust = filters.dust(position.quantity, price)
        if dust != position.dust_quantity:
            position.set_dust(dust)
            if dust:
                log.info("dust left in the position", extra={"symbol": position.symbol, "dust": plain(dust)})

    def _mark(self, symbol: str, price: Decimal, time_ns: int) -> None:
        position = self.positions.get(symbol)
        if position is None or position.flat:
            return
        position.mark(price, time_ns)
        last = self._last_mark_report.get(symbol, 0)
        if time_ns - last >= self.config.mark_report_interval_ns:
            self._last_mark_report[symbol] = time_ns
            self._emit(position=position, note="mark", persist=False)

    def equity(self) -> Decimal:
        return self.config.starting_equity + sum(
            (p.realized_pnl + p.unrealized_pnl for p in self.positions.values()), ZERO
        )


def plain(value: Decimal) -> str:
    """A decimal as a person writes it (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f")
