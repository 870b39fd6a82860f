"""The engine's protection of what an entry filled: TP/SL as one OCO (or the one leg asked for), a trailing
stop, a time stop; grown while a GTC entry fills, placed again for what an exit left, and replaced by an
exit at market when the venue will not take it (what the stop would have done).

A part of ExecutionEngine (engine.py): it works on the engine's state (engine_core.EngineCore) and calls
its siblings' _send, _cancel_where, _exit, _apply and _outcome_unknown.
"""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution.domain import ids, protection
from quantumedge.execution.domain.filters import FilterViolation, SymbolFilters
from quantumedge.execution.domain.orders import (
    ZERO,
    IllegalTransition,
    OcoRequest,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from quantumedge.execution.engine_core import EngineCore, log
from quantumedge.execution.errors import OutcomeUnknown, RateLimited, VenueRejected, VenueUnavailable

_PROTECTIVE = protection.PROTECTIVE


class ProtectionMixin(EngineCore):
    def _needs_protection(self, order: Order) -> bool:
        if not order.wants_protection or order.filled_quantity <= 0:
            return False
        if not order.protection_placed:
            return order.status.terminal or protection.fills_while_resting(order)
        return self._protection_grows(order)

    def _protection_grows(self, entry: Order) -> bool:
        """A filling GTC entry whose protection covers less than it has filled, by a tradable step, and whose
        protection is still whole (none of it filled or taken away by an exit)."""
        if not (entry.take_profit_price or entry.stop_loss_price or entry.trailing_stop_bps):
            return False
        legs = protection.current_legs(entry, self._open_orders(entry.symbol), self._protective_ids(entry))
        if entry.protected_quantity <= 0 or not legs:
            return False  # never placed by quantity (a record from before), or gone: nothing to grow
        if any(o.filled_quantity > 0 for o in legs):
            return False
        filters = self.venue.filters(entry.symbol)
        target = filters.round_quantity(protection.protectable(entry), OrderType.LIMIT)
        return target > entry.protected_quantity

    def _protective_ids(self, entry: Order) -> tuple[str, str, str]:
        return ids.protective_ids(entry.client_order_id, entry.protection_generation)

    def _protect(self, entry: Order) -> None:
        """TP and SL as one OCO (or the one leg asked for) for what the entry filled; arm the time stop.
        Called again while a GTC entry fills: the protection is replaced by one covering all it has filled."""
        first = not entry.protection_placed
        if first:
            # On the venue's clock (market time for paper), which is what check_time_stops compares with.
            deadline = self.venue.now_ns() + entry.time_stop_ns if entry.time_stop_ns else 0
            entry.begin_protection(deadline, self._clock())
        else:
            legs = protection.current_legs(entry, self._open_orders(entry.symbol), self._protective_ids(entry))
            ids_now = {o.client_order_id for o in legs}
            self._cancel_where(lambda o: o.client_order_id in ids_now, note="protection grows with the entry")
            if any(o.filled_quantity > 0 for o in legs):
                return  # a leg filled meanwhile: the position is being closed, nothing to grow
            entry.next_protection_generation(self._clock())
        self._emit(entry, note="protection" if first else "protection grows with the entry's fills")
        held = abs(self._held(entry.symbol))
        self._place_protection(entry, min(protection.protectable(entry), held))

    def _protect_remainder(self, symbol: str, why: str) -> None:
        """An exit that did not close all (refused, cancelled, or filled in part) after protection was
        cancelled for it: what is still held gets protection again, as the latest entry asked for."""
        if self.halted or symbol in self._exit_retries or self._held(symbol) == 0:
            return
        open_here = self._open_orders(symbol)
        if any(o.role in _PROTECTIVE or o.role is OrderRole.EXIT for o in open_here):
            return  # still protected, or an exit is still working on it
        entry = protection.to_protect_again(symbol, self.orders.values())
        if entry is None:
            return
        entry.next_protection_generation(self._clock())
        log.warning("protecting what an exit left", extra={"order": entry.client_order_id, "why": why})
        self._emit(entry, note=f"protection placed again for what is held ({why})")
        self._place_protection(entry, self._closable(symbol))

    def _place_protection(self, entry: Order, quantity: Decimal) -> None:
        filters = self.venue.filters(entry.symbol)
        quantity = filters.round_quantity(quantity, OrderType.LIMIT)
        mark = self.marks.get(entry.symbol) or entry.average_price
        side = entry.side.opposite
        tp, sl, trailing = self._fitted_protection(entry, filters, side, mark)
        if not (tp or sl or trailing):
            return  # a time stop only
        violation = filters.check(OrderType.MARKET, quantity, reference_price=mark)
        if quantity <= 0 or violation is not None:
            self._too_small_to_protect(entry, quantity, violation)
            return
        room = self._protection_room(entry, filters, placing=True)
        if room is not None:
            self._protection_failed(entry.client_order_id, str(room))
            return
        tp_id, sl_id, list_id = self._protective_ids(entry)
        entry.cover(quantity, self._clock())
        self._persist(entry)  # what the protection covers, so a restart does not place it again
        legs = self._protective_legs(entry, side, quantity, tp, sl, trailing)
        if len(legs) == 1:
            self._send(legs[0])
            return
        self._send_oco(entry, legs, OcoRequest(list_id, entry.symbol, side, quantity, tp_id, tp, sl_id, sl, trailing))

    def _too_small_to_protect(self, entry: Order, quantity: Decimal, violation: FilterViolation | None) -> None:
        why = violation.message if violation else "nothing left to protect"
        log.warning("position too small to protect", extra={"order": entry.client_order_id, "qty": str(quantity)})
        # A filling entry not yet protected at all tries again as more of it fills.
        retry_later = protection.fills_while_resting(entry) and entry.protected_quantity <= 0
        entry.protection_too_small(retry_later, self._clock())
        self._emit(entry, note=f"unprotected: {quantity} {entry.symbol} is below the venue's minimum ({why})")

    def _protective_legs(
        self, entry: Order, side: Side, quantity: Decimal, tp: Decimal, sl: Decimal, trailing: Decimal
    ) -> list[Order]:
        """The take-profit (a GTC limit) and the stop (a stop-market, or trailing) asked for, not yet sent."""
        tp_id, sl_id, _ = self._protective_ids(entry)
        now = self._clock()
        common = {
            "intent_id": entry.intent_id,
            "parent_client_order_id": entry.client_order_id,
            "venue": self.venue.name,
            "created_time_ns": now,
            "updated_time_ns": now,
        }
        legs: list[Order] = []
        if tp:
            legs.append(
                Order(
                    tp_id,
                    entry.symbol,
                    side,
                    OrderType.LIMIT,
                    quantity,
                    price=tp,
                    time_in_force=TimeInForce.GTC,
                    role=OrderRole.TAKE_PROFIT,
                    **common,
                )
            )
        if sl or trailing:
            legs.append(
                Order(
                    sl_id,
                    entry.symbol,
                    side,
                    OrderType.MARKET,
                    quantity,
                    stop_price=sl,
                    trailing_stop_bps=trailing,
                    role=OrderRole.STOP_LOSS,
                    **common,
                )
            )
        return legs

    def _send_oco(self, entry: Order, legs: list[Order], request: OcoRequest) -> None:
        """Both legs persisted (and flushed) PENDING before the list is sent, as _send does for one order."""
        for leg in legs:
            leg.joins_list(request.list_client_order_id, self.venue.now_ns() // 1_000_000)
            self.orders[leg.client_order_id] = leg
            self._emit(leg, note="sending (OCO)")
        self.emitter.flush()
        try:
            with self._venue_span("venue submit OCO", legs[0]):
                updates = self.venue.submit_oco(request)
        except (VenueRejected, VenueUnavailable, RateLimited) as exc:
            for leg in legs:
                try:
                    leg.reject(exc.code, exc.message, self._clock())
                except IllegalTransition:
                    continue
                self.counters["rejects"] += 1
                self._emit(leg, note=f"rejected: {exc}")
            self._protection_failed(entry.client_order_id, str(exc))
            return
        except OutcomeUnknown as exc:
            for leg in legs:
                self._outcome_unknown(leg, exc, "OCO leg")
            return
        self.counters["orders_placed"] += 2
        for update in updates:
            self._apply(update)

    def _fitted_protection(
        self, entry: Order, filters: SymbolFilters, side: Side, mark: Decimal
    ) -> tuple[Decimal, Decimal, Decimal]:
        """TP, SL and trailing delta moved inside the venue's filters (PRICE_FILTER on both prices,
        PERCENT_PRICE_BY_SIDE on the take-profit, TRAILING_DELTA), so the OCO is not refused."""
        asked_tp = filters.round_price(entry.take_profit_price) if entry.take_profit_price else ZERO
        asked_sl = filters.round_price(entry.stop_loss_price) if entry.stop_loss_price else ZERO
        average = self.venue.average_price(entry.symbol) or mark
        tp = filters.fit_take_profit(side, asked_tp, average) if asked_tp else ZERO
        sl = filters.fit_stop_price(asked_sl)
        trailing = filters.fit_trailing_delta(side, entry.trailing_stop_bps)
        if (tp, sl, trailing) != (asked_tp, asked_sl, entry.trailing_stop_bps):
            log.info(
                "protection moved inside the venue's filters",
                extra={"order": entry.client_order_id, "tp": str(tp), "sl": str(sl), "trailing_bps": str(trailing)},
            )
        return tp, sl, trailing

    def _protection_room(self, entry: Order, filters: SymbolFilters, placing: bool = False) -> FilterViolation | None:
        """Whether the entry's protection fits the symbol's open-order filters (MAX_NUM_ORDER_LISTS,
        MAX_NUM_ALGO_ORDERS, MAX_NUM_ORDERS): checked before the entry goes, as a position whose protection
        the venue would refuse is not opened, and again before the protection is sent."""
        if not (entry.stop_loss_price or entry.trailing_stop_bps):
            return None
        open_here = [o for o in self._open_orders(entry.symbol) if o is not entry]
        algo = sum(1 for o in open_here if o.role is OrderRole.STOP_LOSS)
        if entry.take_profit_price:
            lists = len({o.group_id for o in open_here if o.group_id})
            return filters.check_list(len(open_here) + (0 if placing else 1), algo, lists)
        return filters.check_algo(algo)

    def _protection_vanished(self, entry: Order) -> bool:
        legs = protection.current_legs(entry, self.orders.values(), self._protective_ids(entry))
        return bool(legs) and all(
            o.status in (OrderStatus.EXPIRED, OrderStatus.REJECTED) and o.filled_quantity == 0 for o in legs
        )

    def _protection_failed(self, entry_id: str, reason: str) -> None:
        """A position the venue would not protect is closed at market: it is what the stop would do."""
        entry = self.orders.get(entry_id)
        if entry is None or self._held(entry.symbol) == 0:
            return
        log.error("protection refused; exiting at market", extra={"order": entry_id, "reason": reason})
        self._exit(entry, ids.order_id(ids.EXIT, entry_id, "unprotected"), f"protection refused ({reason})")

    def _time_stop(self, entry: Order) -> None:
        entry.clear_time_stop(self._clock())
        self._emit(entry, note="time stop reached")
        if self._held(entry.symbol) == 0:
            return
        self._cancel_where(
            lambda o: o.parent_client_order_id == entry.client_order_id and o.role in _PROTECTIVE, note="time stop"
        )
        self._exit(entry, ids.order_id(ids.TIME_STOP, entry.client_order_id), "time stop")

    def _record_ratchets(self, symbol: str) -> None:
        """A simulated trailing stop's ratchet, persisted as it moves: a restart resumes it where it stood."""
        for order in self._open_orders(symbol):
            if order.role is not OrderRole.STOP_LOSS or not order.trailing_stop_bps:
                continue
            peak = self.venue.trailing_peak(order.client_order_id)
            if peak and peak != order.trailing_peak:
                order.ratchet(peak, self._clock())
                self._persist(order)
