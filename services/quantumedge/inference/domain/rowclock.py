"""When a feature row is decided: on the market's clock, a fixed lateness after its boundary.

The row of boundary B holds the events before B (features.py). It is *decided* (scored and acted on)
when the symbol's market clock, the newest exchange time seen on any of its streams, reaches
B + `lateness_ns`: the reorder buffer then gives up whatever is older than B + lateness (a late event
beyond that is handled as late), the row is closed, and it is returned before the event that moved the
clock is applied anywhere. So a row never waits for the next depth update, and the decision happens
at a time the offline labels know exactly: the book in force at B + lateness is the one the decision
meets (training.labels measures every outcome from there).

While the symbol is live (ordering.ReorderBuffer.live: its exchange time near the wall clock, or the
bus idle) the clock is the newest time seen. In a replay or a backlog one topic's batch can run far
ahead of the others, so there the clock is the newest time the reorder buffer released in canonical
order: rows are decided later in wall time, but on the same events as offline.

Live, a row is decided once, and only while it is fresh: one due more than `max_late_ns` (a row interval by
default) before the clock reaches it was never acted on in time (its symbol was silent, so the clock stood
still) and is expired instead, counted in `rows_expired`. Its features still went into the online state;
only the decision is skipped, since a decision made minutes after its time is not the one labels measure.

The service and the backtester both run this: the service passes every consumed event, the backtester
every event of the recording, each before the engines see it. Pure logic: no clock of its own.
"""

from __future__ import annotations

from quantumedge.inference.domain.features import FeatureRow, OnlineFeatures
from quantumedge.inference.domain.ordering import ReorderBuffer
from quantumedge.v1 import market_pb2


class RowClock:
    def __init__(
        self, features: OnlineFeatures, order: ReorderBuffer, lateness_ns: int, max_late_ns: int | None = None
    ) -> None:
        self.features = features
        self.order = order
        self.lateness_ns = int(lateness_ns)
        self.max_late_ns = int(features.config.interval_ns if max_late_ns is None else max_late_ns)
        self.rows_expired = 0  # closed, due, but too late to be decided
        self.clock: dict[str, int] = {}  # symbol -> newest exchange time seen
        self._pending: dict[str, list[FeatureRow]] = {}
        self.rows_closed = 0
        self.rows_dropped = 0  # closed but never decided: a gap came first

    def push(self, event: market_pb2.MarketEvent, now_ns: int) -> list[FeatureRow]:
        """Rows due at this event's time (decide them before applying the event), then take the event in."""
        symbol = event.symbol
        due: list[FeatureRow] = []
        newer = event.exchange_time_ns > self.clock.get(symbol, 0)
        live = self.order.live(symbol, now_ns, event.exchange_time_ns)
        if event.WhichOneof("payload") != "gap" and newer and live:
            self.clock[symbol] = event.exchange_time_ns
            horizon = event.exchange_time_ns - self.lateness_ns
            for ev in self.order.release_before(symbol, horizon):
                self._apply(ev)
            self._add(symbol, self.features.close_until(symbol, horizon))
            due = self._due(symbol, expire=True)
        for ev in self.order.push(event, now_ns):
            self._apply(ev)
        # A replay or backlog: the clock is what the reorder buffer released in order (_apply), so one
        # topic's batch running ahead of the others cannot decide rows their trades and books still owe.
        return due + self._due(symbol, expire=False)

    def flush_due(self, now_ns: int, quiet: bool = True) -> list[FeatureRow]:
        """Release what waited too long for a quiet stream (wall clock); rows due by the market clock.
        `quiet`: the consumer holds no records still to be pushed (ReorderBuffer._may_force)."""
        for ev in self.order.flush_due(now_ns, quiet):
            self._apply(ev)
        out: list[FeatureRow] = []
        for symbol in list(self._pending):
            out.extend(self._due(symbol))
        return out

    def tick(self, now_ns: int) -> list[FeatureRow]:
        """The run's present moved to `now_ns` (the embedded lockstep run: every event before its previous
        step is delivered, none of the new step's yet): release what the reorder buffer holds for a quiet
        stream (flush_due), then every closed row due by `now_ns`, symbols in name order. Rows not yet
        closed wait for their events as ever, so a row holds the same events whichever path decides it."""
        out = self.flush_due(now_ns, quiet=True)
        for symbol in sorted(self._pending):
            out.extend(self._due(symbol, expire=True, clock_ns=max(self.clock.get(symbol, 0), now_ns)))
        return out

    def drain(self) -> None:
        """The stream ended: apply what is held; rows not yet due are never decided."""
        for ev in self.order.drain():
            self._apply(ev)

    def decision_time(self, row: FeatureRow) -> int:
        return row.time_ns + self.lateness_ns

    def _apply(self, event: market_pb2.MarketEvent) -> None:
        rows = self.features.update(event)
        if event.exchange_time_ns > self.clock.get(event.symbol, 0):
            self.clock[event.symbol] = event.exchange_time_ns
        if event.WhichOneof("payload") == "gap":
            # Nothing derived across a break is trusted: closed rows not yet decided are dropped.
            self.rows_dropped += len(self._pending.pop(event.symbol, [])) + len(rows)
            self.rows_closed += len(rows)
            self.clock[event.symbol] = event.exchange_time_ns
            return
        self._add(event.symbol, rows)

    def _add(self, symbol: str, rows: list[FeatureRow]) -> None:
        if rows:
            self.rows_closed += len(rows)
            self._pending.setdefault(symbol, []).extend(rows)

    def _due(self, symbol: str, expire: bool = False, clock_ns: int | None = None) -> list[FeatureRow]:
        """Rows the clock (the symbol's, or `clock_ns`) has reached. Live (`expire`), rows it reached too long
        ago are expired: their symbol's clock stood still. A replay's or backlog's rows are late in wall time by
        nature."""
        pending = self._pending.get(symbol)
        if not pending:
            return []
        horizon = (self.clock.get(symbol, 0) if clock_ns is None else clock_ns) - self.lateness_ns
        n = 0
        while n < len(pending) and pending[n].time_ns <= horizon:
            n += 1
        due, self._pending[symbol] = pending[:n], pending[n:]
        if not expire:
            return due
        fresh_from = horizon - self.max_late_ns  # boundaries before this were due too long ago
        k = 0
        while k < len(due) and due[k].time_ns < fresh_from:
            k += 1
        self.rows_expired += k
        return due[k:]
