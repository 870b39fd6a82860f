"""The execution service: consumer loops, venue, recovery and halts (its gRPC API is servicer.py).

Consumes risk.decisions.v1 (only approved intents whose signature verifies, seen once and younger than
signing.max_decision_age_s, are traded; anything else goes to dlq.v1 with its reason code and an audit
record on audit.v1), ingest.*.v1 (paper fills, marks, time stops) and control.v1 (halt / resume / flatten,
verified the same way; a record older than the state in force is refused). Publishes every order change,
fill and position update to execution.reports.v1 (keyed by symbol) and the order / position state to the compacted
execution.state.v1 (keyed by client order id / "position:SYMBOL"). On start it rebuilds that state,
applies the current halt, and reconciles with the venue before it consumes anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from quantumedge.execution import fencing
from quantumedge.execution.app import ExecutionApp
from quantumedge.execution.domain.orders import Order
from quantumedge.execution.emitters import BusEmitter, ObservingEmitter, log_report
from quantumedge.execution.engine import EngineConfig, ExecutionEngine
from quantumedge.execution.lease import LEASE_LOST
from quantumedge.execution.servicer import ExecutionServicer, validate_submit
from quantumedge.execution.venue_base import Venue
from quantumedge.execution.venue_setup import (
    binance_venue,
    build_venue,
    check_venue_allowed,
    load_exchange_credentials,
)
from quantumedge.shared import topics
from quantumedge.shared.admission import HALT_KEY, StoredRecord, scope_of_key, stored_state
from quantumedge.shared.audit import audit_event, publish_audit, refusal_audit
from quantumedge.shared.auth import current_actor
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.bus.coalesce import market_batch
from quantumedge.shared.bus.loop import ConsumerLoop, Refused, admit
from quantumedge.shared.grpc_server import ServiceBinding
from quantumedge.shared.keyring import keyring_for
from quantumedge.shared.logs import get_logger
from quantumedge.shared.observe import Gauges
from quantumedge.shared.service import ServiceBase
from quantumedge.shared.signing import Verdict
from quantumedge.shared.telemetry import meter
from quantumedge.v1 import common_pb2, control_pb2, execution_pb2, execution_pb2_grpc, market_pb2, risk_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

# Emitters, the gRPC servicer and venue construction live in emitters.py, servicer.py and venue_setup.py;
# their names stay importable from here.
__all__ = [
    "GRPC_NAME",
    "BusEmitter",
    "ExecutionService",
    "ExecutionServicer",
    "ObservingEmitter",
    "binance_venue",
    "build_venue",
    "check_venue_allowed",
    "load_exchange_credentials",
    "log_report",
    "validate_submit",
]

log = get_logger(__name__)
GRPC_NAME = "quantumedge.v1.ExecutionService"
_meter = meter("execution")
_decision_to_ack = _meter.create_histogram(
    "qe.execution.decision_to_ack", unit="ms", description="risk decision time to the venue's answer to its order"
)
_gauges = Gauges("execution")
_gauges.gauge(
    "qe.execution.venue_weight_used",
    lambda svc: [(svc.venue_weight_used(), {"venue": svc.venue.name})],
    "request weight used in the venue's current minute (X-MBX-USED-WEIGHT-1M; 0 on the paper venue)",
)
_gauges.gauge(
    "qe.execution.equity", lambda svc: [(svc.engine.status().equity, {"venue": svc.venue.name})], "venue equity"
)
_gauges.gauge(
    "qe.execution.open_orders",
    lambda svc: [(svc.engine.status().open_orders, {"venue": svc.venue.name})],
    "orders working at the venue",
)
_gauges.gauge(
    "qe.execution.halted", lambda svc: [(float(svc.engine.status().halted), {})], "1 while execution is halted"
)


class ExecutionService(ServiceBase):
    name = "execution"

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        *,
        venue: Venue | None = None,
        credentials: Mapping[str, str] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """`venue` / `credentials` are for tests and tools; the service normally builds its venue from
        settings, reading testnet/live keys from Vault (refusing to start without them). `clock`: the embedded
        lockstep run's market clock (shared/market_clock.py) for the engine, the decision gate and heartbeats;
        None = the wall clock."""
        super().__init__(settings, bus)
        self.cfg = settings.execution
        self.observing = self.cfg.mode == "observe"
        self.venue, self._secrets = build_venue(settings, venue, credentials, observing=self.observing)
        self.lease: Any = None
        self._lease_store: Any = None
        self._lease_lost = False
        fenced = self.cfg.lease != "none"
        emitter = ObservingEmitter(bus) if self.observing else BusEmitter(bus)
        self.engine = ExecutionEngine(
            fencing.FencedVenue(self.venue, lambda: self.lease) if fenced else self.venue,
            fencing.FencedEmitter(emitter, lambda: self.lease) if fenced else emitter,
            EngineConfig.from_settings(settings),
            clock=clock or time.time_ns,
        )
        # Nothing is traded that risk did not sign (ConfigError here when risk's public keys cannot be had).
        self.keyring = keyring_for(settings, self.name)
        sig = settings.signing
        self.clock: Callable[[], int] = clock or time.time_ns
        # Execution's one wiring (app.py), which the backtester runs too: gates, observe mode, halts, heartbeats.
        self.app = ExecutionApp(
            self.engine,
            self.keyring,
            self.cfg,
            int(sig.max_decision_age_s * 1e9),
            int(sig.max_clock_ahead_s * 1e9),
            bus.publish,
            _ServiceObserver(self),
        )
        self.decision_gate = self.app.decision_gate  # the servicer's ReviewOrder answers pass it too
        self.control_gate = self.app.control_gate
        self.touch = self.app.touch
        # On an injected market clock heartbeats follow that clock from the market path (risk's silence bound is
        # measured on it); the wall-clock housekeeping thread then sends none.
        self._market_clocked = clock is not None
        self._beat_lock = threading.Lock()  # the market path and the lockstep tick both beat
        self.servicer = ExecutionServicer(self)
        self._loop: ConsumerLoop | None = None
        self._market_loop: ConsumerLoop | None = None
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.started = False
        _gauges.add_owner(self)

    @property
    def observed_reports(self) -> int:
        return self.app.observed_reports

    def venue_weight_used(self) -> float:
        rest = getattr(self.venue, "rest", None)
        limiter = getattr(rest, "limiter", None)
        return float(getattr(limiter, "used_weight_1m", 0))

    # -- ServiceBase ------------------------------------------------------------------------------
    def grpc_services(self) -> list[ServiceBinding]:
        return [(execution_pb2_grpc.add_ExecutionServiceServicer_to_server, self.servicer, GRPC_NAME)]

    def start(self) -> None:
        if self.cfg.lease != "none" and not self._take_lease():
            return
        if not self.observing:
            # Observe-only starts flat and never writes execution.state.v1: a trading execution's state on
            # the same bus is neither taken over nor overwritten.
            state = self.bus.read_all(topics.EXEC_STATE)
            self.engine.restore((r.key.decode(), r.value) for r in state if r.key)
        self.venue.start(self.engine.on_update, self._resync)
        if self._secrets is not None:
            self._follow_secret_rotation()
        self.engine.reconcile()
        # After reconciliation, so a flatten the halt asks for sells what the venue says is held; nothing
        # is consumed before this, so no intent can slip in between.
        self._apply_current_halt(self.bus.read_all(topics.CONTROL))
        self.engine.heartbeat("execution online: state rebuilt and reconciled with the venue")
        self.bus.flush()
        refusals = refusal_audit(self.bus, self.name)
        # Two members of the one consumer group (its ACL is unchanged): decisions and control records in one
        # thread, market data in another, so a decision or a halt never waits behind a backlog of ticks. Each
        # loop commits only what it handled (and what that published was acknowledged); the engine's lock
        # serialises what they do to the book. Decisions join first: they are served before any backlog.
        self._loop = ConsumerLoop(
            self.bus,
            group=self.name,
            handlers={topics.DECISIONS: self._on_decision, topics.CONTROL: self._on_control},
            on_refused=refusals,
            thread_name=f"{self.name}-decisions",
        )
        self._loop.start()
        self._market_loop = ConsumerLoop(
            self.bus,
            group=self.name,
            handlers=dict.fromkeys(topics.MARKET, self._on_market),
            on_refused=refusals,
            thread_name=f"{self.name}-market",
            # Each poll in exchange-time order (a stop must meet the book its trade met, as in the backtest);
            # behind on books, only the newest top of book per symbol is applied; every trade is.
            coalesce=market_batch,
        )
        self._market_loop.start()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="execution-housekeeping", daemon=True)
        self._housekeeper.start()
        self.started = True
        log.info("execution started", extra={"venue": self.venue.name, **self.status_line()})

    def _take_lease(self) -> bool:
        """Passive until this process holds the executor lease: nothing is read, consumed or sent before."""
        self.lease, self._lease_store = fencing.take(self.settings)
        log.info("execution waiting for the executor lease", extra={"holder": self.lease.holder})
        if not fencing.wait_for_lease(self.lease, self._stop):
            return False
        fencing.keep_lease(self.lease, self._stop, self._on_lease_lost)
        return True

    def _on_lease_lost(self) -> None:
        # Sending already stopped (every venue call and state write is fenced); the process stops so a
        # restart comes back as a passive candidate with state rebuilt from the new holder's records.
        self._lease_lost = True
        log.error(
            "execution stops: the executor lease was lost",
            extra={"reason_code": LEASE_LOST, "holder": self.lease.holder},
        )

    def stop(self) -> None:
        self._stop.set()
        for loop in (self._loop, self._market_loop):
            if loop is not None:
                loop.stop()
        if self._housekeeper is not None:
            self._housekeeper.join(5)
        self.venue.stop()
        try:
            if self.lease is None or self.lease.active:
                self.bus.flush()
        finally:
            if self.lease is not None:
                self.lease.release()
            if self._lease_store is not None:
                self._lease_store.close()
            if self._secrets is not None:
                self._secrets.close()
            self.servicer.close()
            self.keyring.close()

    def healthy(self) -> bool:
        if self._lease_lost:
            return False
        return all(loop.alive and loop.error is None for loop in (self._loop, self._market_loop) if loop is not None)

    def status_line(self) -> dict[str, Any]:
        s = self.engine.status()
        return {
            "venue": s.venue,
            "halted": s.halted,
            "intents": s.intents_received,
            "orders": s.orders_placed,
            "fills": s.fills,
            "rejects": s.rejects,
            "open_orders": s.open_orders,
            "equity": round(s.equity, 2),
        }

    # -- handlers (the app decides; a refusal is raised here, dead-lettered and audited by the loop) ----------
    def _on_decision(self, decision: risk_pb2.RiskDecision, record: Record) -> None:
        key = (record.key or b"").decode(errors="replace")
        verdict = self.app.on_decision(decision, key, (record.partition, record.offset), self.clock())
        if not verdict.ok:
            raise Refused(verdict.code, verdict.detail)  # never the venue

    def _on_market(self, event: market_pb2.MarketEvent, _record: Record) -> None:
        admit(self.app.on_market(event))
        if self._market_clocked:
            self.tick(self.clock())

    def tick(self, now_ns: int) -> None:
        """The lockstep present moved (registered in embedded.py): a heartbeat that fell due goes out now, on
        the marks of the step before, not on whichever of the new step's events a thread handled first. With
        ticks wired it is always the tick that beats; the market path is the fallback without them."""
        if self._market_clocked:
            with self._beat_lock:
                self.app.tick(now_ns)

    def _on_control(self, event: control_pb2.ControlEvent, record: Record) -> None:
        key = (record.key or b"").decode(errors="replace")
        verdict = self.app.on_control(event, key, (record.partition, record.offset))
        if not verdict.ok:
            raise Refused(verdict.code, verdict.detail)

    def _apply_current_halt(self, records: list[Record]) -> None:
        """The newest valid "halt" record of the compacted control topic is the current halt state; when records
        exist but none verifies, the state is unknown and execution halts (fail closed)."""
        stored = stored_state(
            (StoredRecord((r.key or b"").decode(errors="replace"), r.value, (r.partition, r.offset)) for r in records),
            self.control_gate,
        )
        for rec, verdict in stored.refused:
            log.warning("stored control record refused", extra={"key": rec.key, "code": verdict.code})
        for _key, event in sorted(stored.latest.items()):
            if event.WhichOneof("payload") == "trading_state":
                self.app.apply_trading_state(event)
        for key, code in stored.unverifiable.items():
            scope = scope_of_key(key)
            if scope is not None:
                # Records under a state key, none genuine: the state is unknown, so exits only (fail closed).
                self.engine.on_trading_state(
                    risk_pb2.SymbolTradingState(
                        symbol=scope,
                        state=risk_pb2.TRADING_STATE_REDUCING,
                        reason_code="state_unverified",
                        detail=f"trading state on control.v1 failed verification ({code})",
                    )
                )
        if HALT_KEY in stored.latest:
            self.app.apply_halt(stored.latest[HALT_KEY])
        elif HALT_KEY in stored.unverifiable:
            reason = f"halt state on control.v1 failed verification ({stored.unverifiable[HALT_KEY]})"
            self.engine.on_halt(control_pb2.HaltState(halted=True, limit="unverified"), cause="start", reason=reason)

    def refuse_answer(self, method: str, verdict: Verdict) -> None:
        """An RPC answer from risk that failed verification: audited on audit.v1 (there is no record to
        dead-letter)."""
        actor = common_pb2.Actor(subject=current_actor() or "anonymous", source="risk ReviewOrder answer")
        outcome = f"refused: {verdict.code}: {verdict.detail}"
        publish_audit(self.bus, audit_event(self.name, method, False, actor, outcome, code=verdict.code))
        self.bus.flush()

    def _resync(self) -> None:
        try:
            self.engine.reconcile()
            self.bus.flush()
        except Exception:
            log.exception("reconciliation after user-stream reconnect failed")

    def _housekeeping(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self.cfg.housekeeping_interval_s):
            if self.bus.outage.down:  # nothing new goes to the venue while its reports cannot be written
                # Beat first once the bus is back: risk refuses everything (stale_execution_state) until it
                # hears from execution again, and an outage is usually longer than its silence bound.
                last_beat = 0.0
                continue
            try:
                self.engine.resolve_pending()
                self.engine.check_time_stops(self.venue.now_ns())
                self.engine.compact()
                wall_beats = self.cfg.heartbeat_interval_s and not self._market_clocked
                if wall_beats and time.monotonic() - last_beat >= self.cfg.heartbeat_interval_s:
                    last_beat = time.monotonic()
                    self.engine.heartbeat()
                self.bus.flush()
            except Exception:
                log.exception("execution housekeeping failed")

    def _follow_secret_rotation(self) -> None:
        from quantumedge.secrets import paths

        path = paths.exchange_path(self.cfg.venue)
        venue = self.venue
        if path is None or not venue.follows_key_rotation:
            return

        def _rotated(data: Mapping[str, str]) -> None:
            venue.update_credentials(data)
            log.info("exchange key rotated; new key in use", extra={"path": path})

        def _watch_error(error: Exception) -> None:
            log.warning("exchange key watch failed; the key in use stays", extra={"path": path, "error": str(error)})

        def _lost(error: Exception) -> None:
            # Vault access is gone for good: stop opening positions and say why (protection stays on the venue).
            self.engine.on_halt(control_pb2.HaltState(halted=True, limit="vault"), cause="vault", reason=str(error))

        self._secrets.watch(path, _rotated, _watch_error)
        self._secrets.on_failure(_lost)


class _ServiceObserver:
    """The app's news as OpenTelemetry metrics and log lines."""

    def __init__(self, service: ExecutionService) -> None:
        self.service = service

    def traded(self, decision: risk_pb2.RiskDecision, order: Order | None) -> None:
        decided = decision.decided_time_ns or decision.intent.created_time_ns
        if order is not None and decided and order.venue_order_id:  # measured once the venue answered
            ms = max(0.0, (self.service.clock() - decided) / 1e6)
            _decision_to_ack.record(ms, {"venue": self.service.venue.name})

    def observed(self, report: execution_pb2.ExecutionReport) -> None:
        fill = report.hypothetical_fill
        log.info(
            "decision observed",
            extra={
                "order": report.order.client_order_id,
                "symbol": report.order.symbol,
                "side": common_pb2.Side.Name(report.order.side).removeprefix("SIDE_"),
                "quantity": report.order.quantity,
                "hypothetical_price": fill.price if report.HasField("hypothetical_fill") else None,
                "note": report.note,
            },
        )

    def state_changed(self, scope: str | None, state: str, event: control_pb2.ControlEvent) -> None:
        where = {} if scope is None else {"scope": scope}
        extra = {**where, "state": state, "by": event.actor.subject, "reason": event.reason}
        log.info("trading state changed", extra=extra)
