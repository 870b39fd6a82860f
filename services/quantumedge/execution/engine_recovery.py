"""The engine after a restart or a lost answer: state rebuilt from execution.state.v1, reconciled with the
venue (orders, orders it has that we lost, missed fills, balances), orders whose outcome is unknown resolved
by query and never sent again, and finished orders tombstoned so the state stays bounded.

A part of ExecutionEngine (engine.py) on the engine's state (engine_core.EngineCore); it calls its
siblings' _apply, _set_status, _after_change, _emit, _protect, _protection_failed and _schedule_exit_retry.
"""

from __future__ import annotations

from collections.abc import Iterable

from quantumedge.execution import compaction
from quantumedge.execution.convert import order_from_pb, position_from_pb
from quantumedge.execution.domain import ids, protection
from quantumedge.execution.domain.orders import ZERO, Order, OrderRole, OrderSnapshot, OrderStatus
from quantumedge.execution.domain.unknown import OUTCOME_UNKNOWN
from quantumedge.execution.engine_core import POSITION_KEY, EngineCore, log, plain
from quantumedge.execution.errors import VenueError
from quantumedge.execution.venue_base import Recovery
from quantumedge.v1 import execution_pb2

_PROTECTIVE = protection.PROTECTIVE


class RecoveryMixin(EngineCore):
    def restore(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Rebuild orders and positions from execution.state.v1 (key, value) pairs, oldest first."""
        latest: dict[str, bytes] = {}
        for key, value in records:
            if value:
                latest[key] = value
            else:
                latest.pop(key, None)  # a tombstone
        with self._lock:
            for key, value in latest.items():
                record = execution_pb2.ExecutionReport.FromString(value)
                if key.startswith(POSITION_KEY) and record.HasField("position"):
                    self.positions[record.position.symbol] = position_from_pb(record.position)
                elif record.HasField("order") and record.order.client_order_id:
                    order = self.orders[record.order.client_order_id] = order_from_pb(record.order)
                    self._indexes.update(order)
                    if order.exit_retry_due_ns:
                        schedule = (order.client_order_id, order.exit_retry_attempts, order.exit_retry_due_ns)
                        self._exit_retries[order.symbol] = schedule
        log.info("state restored", extra={"orders": len(self.orders), "positions": len(self.positions)})

    def reconcile(self) -> list[str]:
        """Bring local state to the venue's: open orders, orders it has that we lost, fills missed,
        balances. Every difference corrected is reported with a note; the notes are returned."""
        with self._lock:
            before = self.counters["reconciled_differences"]
            notes: list[str] = []
            self._reconcile_orders(notes)
            self._reconcile_positions(notes)
            for entry in list(self.orders.values()):
                if not self._needs_protection(entry):
                    continue
                if not self.venue.protects_on_reconcile():
                    self._awaiting_protection.add(entry.client_order_id)  # placed on the first market event
                    continue
                notes.append(f"{entry.client_order_id}: protection placed after restart")
                self._protect(entry)
            log.info(
                "reconciled with venue",
                extra={"differences": self.counters["reconciled_differences"] - before, "notes": notes[:20]},
            )
            return notes

    def resolve_pending(self) -> None:
        """Orders whose result stayed unknown: query them. One whose send had an unknown outcome is never
        forgotten or sent again (see resolve_unknown); one persisted PENDING but never answered (a crash
        mid-send) is forgotten once the venue provably cannot have it (absent after recvWindow)."""
        with self._lock:
            now = self._clock()
            venue_now = self.venue.now_ns()
            for order in [o for o in self._open_orders() if o.status is OrderStatus.PENDING]:
                if order.outcome_unknown:
                    self._resolve_unknown(order, venue_now)
                    continue
                if order.updated_time_ns and now - order.updated_time_ns < self.config.pending_grace_ns:
                    continue
                try:
                    snapshot = self.venue.query(order.symbol, order.client_order_id)
                except VenueError as exc:
                    log.warning(
                        "pending order still unresolved", extra={"order": order.client_order_id, "error": str(exc)}
                    )
                    continue
                if snapshot is not None:
                    self._sync_snapshot(order, snapshot, "resolved by query")
                elif self.venue.safe_to_forget(order.sent_time_ms):
                    self._never_sent(order, "never reached the venue (absent after recvWindow)")

    def _never_sent(self, order: Order, why: str) -> None:
        """An order persisted PENDING that provably never reached the venue (not one whose outcome is
        unknown: that is never re-sent). An exit is sent again while the position stands (as an exit retry,
        due now); an entry is refused with NOT_SENT so risk sees it and the strategy decides afresh on
        today's prices; a protective leg expires, which places protection again or closes the position."""
        if order.role is OrderRole.ENTRY:
            order.reject(protection.NOT_SENT, f"{why}: not sent; decided again", self._clock())
            self.counters["rejects"] += 1
            log.warning("unsent entry refused for a new decision", extra={"order": order.client_order_id})
            self._emit(order, note=f"refused: {why}; the intent is decided again, not sent stale")
            return
        self._set_status(order, OrderStatus.EXPIRED, why)
        if order.role is OrderRole.EXIT and self._held(order.symbol) != 0:
            log.warning("unsent exit sent again", extra={"order": order.client_order_id, "why": why})
            self._schedule_exit_retry(order, immediately=True)
        self._after_change(order)  # a protective leg that never got there leaves a naked position

    def _resolve_unknown(self, order: Order, now_ns: int) -> None:
        """Ask the venue about an order whose outcome is unknown (on the backoff schedule); past the bound,
        raise the operator alert once: the symbol takes exits only until the order's fate is known."""
        if self.unknown.due(order, now_ns):
            try:
                snapshot = self.venue.query(order.symbol, order.client_order_id)
            except VenueError as exc:
                log.warning("unknown order could not be queried", extra={"order": order.client_order_id, "error": exc})
                snapshot = None
            if snapshot is not None:
                self._sync_snapshot(order, snapshot, f"outcome resolved by query ({order.outcome_unknown_code})")
                if not order.outcome_unknown:
                    self.unknown.resolved(order.client_order_id)
                    return
            self.unknown.asked(order, now_ns)
        if self.unknown.needs_alert(order, now_ns):
            age_s = (now_ns - order.outcome_unknown_since_ns) / 1e9
            log.warning(
                "order outcome still unknown past the bound; symbol takes exits only",
                extra={
                    "reason_code": OUTCOME_UNKNOWN,
                    "order": order.client_order_id,
                    "symbol": order.symbol,
                    "code": order.outcome_unknown_code,
                    "unknown_for_s": round(age_s, 1),
                },
            )
            order.record_alert(self._clock())
            self._emit(
                order,
                note=f"outcome unknown for {age_s:.0f}s ({order.outcome_unknown_code}): {order.symbol} takes exits "
                "only; never sent again; still being resolved",
                alert=OUTCOME_UNKNOWN,
            )
            if order.role in _PROTECTIVE and order.parent_client_order_id:
                # Protection that may never have arrived: the position is closed as its stop would close it.
                self._protection_failed(order.parent_client_order_id, "protection outcome unknown past the bound")

    def _outcome_unknown(self, order: Order, exc: VenueError, what: str = "order") -> None:
        """The venue may have the order: keep it PENDING, never send it again, resolve it later."""
        log.warning(
            "order outcome unknown; never sent again, resolving",
            extra={"order": order.client_order_id, "code": exc.code, "reason_code": OUTCOME_UNKNOWN},
        )
        order.outcome_became_unknown(order.outcome_unknown_since_ns or self.venue.now_ns(), exc.code, self._clock())
        self._emit(order, note=f"{what} outcome unknown ({exc}): never sent again; resolving")

    def compact(self) -> int:
        """Tombstone finished orders nothing needs any more (see compaction), so execution.state.v1 and a
        restart stay bounded by what is live plus a day, not by all history. Returns how many."""
        with self._lock:
            gone = compaction.forgettable(
                self.orders.values(),
                self._clock(),
                self._held,
                lambda symbol: protection.to_protect_again(symbol, self.orders.values()),
                self.config.state_retention_ns,
            )
            for cid in gone:
                order = self.orders.pop(cid)
                self._indexes.forget(order)
                self.emitter.state(cid, None)
            if gone:
                log.info("finished orders forgotten", extra={"orders": len(gone), "kept": len(self.orders)})
            return len(gone)

    def _sync_snapshot(self, order: Order, snapshot: OrderSnapshot, note: str) -> None:
        version = order.version
        for update in self.venue.snapshot_updates(snapshot, note):
            self._apply(update, note=f"{note}: venue shows {snapshot.status.name}")
        if order.version != version:
            self.counters["reconciled_differences"] += 1

    def _reconcile_orders(self, notes: list[str]) -> None:
        for order in self._open_orders():
            recovery = self.venue.recover(order)
            if recovery is Recovery.NEVER_SENT:
                self._never_sent(order, f"reconciled: never reached the {self.venue.name} venue before restart")
                notes.append(f"{order.client_order_id}: never sent before restart -> {order.status.name}")
                continue
            if recovery is Recovery.RESTORED:
                continue
            try:
                snapshot = self.venue.query(order.symbol, order.client_order_id)
            except VenueError as exc:
                notes.append(f"{order.client_order_id}: could not query ({exc}); retried later")
                continue
            if snapshot is None:
                if order.outcome_unknown:
                    continue  # never forgotten on absence: resolve_pending keeps asking
                if order.status is OrderStatus.PENDING and not self.venue.safe_to_forget(order.sent_time_ms):
                    continue
                self.counters["reconciled_differences"] += 1
                self._set_status(order, OrderStatus.EXPIRED, "reconciled: the venue has no such order")
                notes.append(f"{order.client_order_id}: venue has no such order -> EXPIRED")
                self._after_change(order)
                continue
            if snapshot.status != order.status or snapshot.executed_quantity != order.filled_quantity:
                notes.append(
                    f"{order.client_order_id}: local {order.status.name} {plain(order.filled_quantity)}, "
                    f"venue {snapshot.status.name} {plain(snapshot.executed_quantity)}"
                )
            self._sync_snapshot(order, snapshot, "reconciled")
        try:
            venue_open = self.venue.adoptable_orders()
        except VenueError as exc:
            notes.append(f"open orders unavailable: {exc}")
            return
        for snapshot in venue_open:
            if snapshot.client_order_id in self.orders:
                continue
            if not ids.is_ours(snapshot.client_order_id):
                notes.append(f"{snapshot.client_order_id}: open on the venue but not ours; left alone")
                continue
            order = self._adopt(snapshot)
            notes.append(f"{order.client_order_id}: open on the venue, unknown locally -> adopted")
            self.counters["reconciled_differences"] += 1
            self._sync_snapshot(order, snapshot, "reconciled: adopted from venue")

    def _adopt(self, snapshot: OrderSnapshot) -> Order:
        cid = snapshot.client_order_id
        role = OrderRole.ENTRY
        parent = ""
        if cid.endswith(ids.TAKE_PROFIT_SUFFIX):
            role, parent = OrderRole.TAKE_PROFIT, ids.protected_entry(cid)
        elif cid.endswith(ids.STOP_LOSS_SUFFIX):
            role, parent = OrderRole.STOP_LOSS, ids.protected_entry(cid)
        elif cid[len(ids.PREFIX)] in (ids.EXIT, ids.FLATTEN, ids.TIME_STOP):
            role = OrderRole.EXIT
        order = Order(
            cid,
            snapshot.symbol,
            snapshot.side,
            snapshot.order_type,
            snapshot.quantity,
            price=snapshot.price,
            stop_price=snapshot.stop_price,
            time_in_force=snapshot.time_in_force,
            role=role,
            parent_client_order_id=parent,
            group_id=cid[: -len(ids.TAKE_PROFIT_SUFFIX)] + ids.OCO_LIST_SUFFIX if parent and snapshot.group_id else "",
            venue=self.venue.name,
            venue_order_id=snapshot.venue_order_id,
            created_time_ns=snapshot.time_ns or self._clock(),
        )
        self.orders[cid] = order
        self._indexes.update(order)
        return order

    def _reconcile_positions(self, notes: list[str]) -> None:
        symbols = sorted(set(self.config.symbols) | set(self.positions) | {o.symbol for o in self.orders.values()})
        if not symbols:
            return
        try:
            balances = self.venue.base_balances(symbols)
        except VenueError as exc:
            notes.append(f"balances unavailable: {exc}")
            return
        if balances is None:
            return
        for symbol in symbols:
            position = self._position(symbol)
            balance = balances.get(symbol, ZERO)
            if not position.baseline_set:
                # First sight of this account: what it holds beyond our position is not ours to manage.
                position.set_baseline(balance)
                self._emit(position=position, note=f"baseline set: {symbol} balance {plain(balance)} not managed")
                continue
            venue_quantity = balance - position.baseline_quantity
            if venue_quantity == position.quantity:
                continue
            old = position.quantity
            position.correct_to(venue_quantity, self.marks.get(symbol, ZERO))
            self._update_dust(position)
            self.counters["reconciled_differences"] += 1
            note = (
                f"reconciled: {symbol} position {plain(old)} -> {plain(venue_quantity)} "
                f"(venue balance {plain(balance)} - baseline {plain(position.baseline_quantity)})"
            )
            notes.append(note)
            log.warning(
                "position corrected to the venue's",
                extra={"symbol": symbol, "local": str(old), "venue": str(venue_quantity)},
            )
            self._emit(position=position, note=note)
