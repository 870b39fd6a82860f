"""The execution service: consumer loop, venue, recovery and the ExecutionService gRPC API.

Consumes risk.decisions.v1 (only approved intents whose signature verifies, seen once and younger than
signing.max_decision_age_s, are traded; anything else goes to dlq.v1 with its reason code and an audit
record on audit.v1), ingest.*.v1 (paper fills, marks, time stops) and control.v1 (halt / resume / flatten,
verified the same way; a record older than the state in force is refused). Publishes every order change,
fill and position update to execution.reports.v1 (keyed by symbol) and the order / position state to the compacted
execution.state.v1 (keyed by client order id / "position:SYMBOL"). On start it rebuilds that state,
applies the current halt, and reconciles with the venue before it consumes anything.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from quantumedge.execution import fencing, ids
from quantumedge.execution.convert import order_to_pb, position_to_pb
from quantumedge.execution.engine import EngineConfig, ExecutionEngine
from quantumedge.execution.lease import LEASE_LOST
from quantumedge.execution.observe import VENUE_NAME as OBSERVE_VENUE
from quantumedge.execution.observe import TouchBook, observed_report
from quantumedge.execution.venue import BINANCE_URLS, BinanceVenue, Venue, paper_venue
from quantumedge.shared import bounds, signing, topics
from quantumedge.shared.admission import (
    HALT_KEY,
    ControlGate,
    DecisionGate,
    StoredRecord,
    scope_of_key,
    stored_state,
)
from quantumedge.shared.audit import audit_event, publish_audit, refusal_audit
from quantumedge.shared.auth import channel_credentials_from_settings, current_actor, forward_metadata
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.bus.coalesce import latest_books
from quantumedge.shared.bus.loop import ConsumerLoop, Refused, admit
from quantumedge.shared.config import ConfigError
from quantumedge.shared.grpc_server import ServiceBinding, refuse_invalid
from quantumedge.shared.keyring import keyring_for
from quantumedge.shared.logs import get_logger
from quantumedge.shared.observe import Gauges
from quantumedge.shared.service import ServiceBase
from quantumedge.shared.signing import Verdict
from quantumedge.shared.telemetry import meter
from quantumedge.v1 import (
    common_pb2,
    control_pb2,
    execution_pb2,
    execution_pb2_grpc,
    market_pb2,
    risk_pb2,
    risk_pb2_grpc,
)

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

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


class BusEmitter:
    """Reports to execution.reports.v1 (by symbol), state to the compacted execution.state.v1."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def report(self, symbol: str, report: execution_pb2.ExecutionReport) -> None:
        self.bus.publish(topics.REPORTS, symbol or None, report)
        log_report(report)

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        self.bus.publish(topics.EXEC_STATE, key, record)

    def flush(self) -> None:
        self.bus.flush()


class ObservingEmitter(BusEmitter):
    """Observe-only: reports (heartbeats of the flat position) are published; execution.state.v1 is not."""

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        return None


def log_report(report: execution_pb2.ExecutionReport) -> None:
    """One INFO line per order sent, fill and rejection: what an operator reads in the logs."""
    order = report.order
    if not order.client_order_id:
        return
    fields = {
        "order": order.client_order_id,
        "symbol": order.symbol,
        "side": common_pb2.Side.Name(order.side).removeprefix("SIDE_"),
        "role": execution_pb2.OrderRole.Name(order.role).removeprefix("ORDER_ROLE_"),
        "venue": report.venue,
    }
    if report.HasField("fill"):
        fill = report.fill
        log.info("fill", extra={**fields, "quantity": fill.quantity, "price": fill.price, "fee": fill.fee})
    elif order.status == execution_pb2.ORDER_STATUS_REJECTED:
        log.info("order rejected", extra={**fields, "code": order.reject_code, "reason": order.reject_message})
    elif report.note.startswith("sending"):
        log.info(
            "order sent",
            extra={
                **fields,
                "type": risk_pb2.OrderType.Name(order.order_type).removeprefix("ORDER_TYPE_"),
                "quantity": order.quantity,
                "price": order.price,
            },
        )


def load_exchange_credentials(settings: Settings) -> tuple[Mapping[str, str], Any]:
    """The exchange key of the configured venue from Vault (via quantumedge.secrets), and the handle that
    follows its rotations. Raises the secrets module's error, naming the path and reason, never a value."""
    from quantumedge.secrets import paths
    from quantumedge.secrets.require import require_secrets

    secrets = require_secrets(settings, "execution")
    path = paths.exchange_path(settings.execution.venue)
    if path is None:  # pragma: no cover - paper never gets here
        raise ConfigError(f"venue {settings.execution.venue} needs no exchange key")
    return secrets[path], secrets


def binance_venue(settings: Settings, credentials: Mapping[str, str]) -> BinanceVenue:
    cfg = settings.execution
    rest_default, ws_default = BINANCE_URLS[cfg.venue]
    has_signing_key = any(credentials.get(k) for k in ("api_secret", "private_key", "private_key_pem"))
    if not credentials.get("api_key") or not has_signing_key:
        raise ConfigError(
            f"exchange secret for venue {cfg.venue} lacks api_key and api_secret (or private_key): "
            "store both keys under the venue's path"
        )
    return BinanceVenue(
        cfg.venue,
        cfg.rest_url or rest_default,
        cfg.ws_api_url or ws_default,
        credentials,
        settings.symbols,
        recv_window_ms=cfg.recv_window_ms,
        connect_timeout_s=cfg.connect_timeout_s,
        read_timeout_s=cfg.read_timeout_s,
        max_attempts=cfg.max_attempts,
        max_wait_s=cfg.max_rate_limit_wait_s,
        user_stream=cfg.user_stream,
        exchange_info_ttl_s=cfg.exchange_info_ttl_s,
        unknown_symbol_ttl_s=cfg.unknown_symbol_ttl_s,
        stream_options={
            "max_connection_age_s": cfg.stream_max_connection_age_s,
            "watchdog_interval_s": cfg.stream_watchdog_interval_s,
            "watchdog_timeout_s": cfg.stream_watchdog_timeout_s,
        },
    )


def check_venue_allowed(settings: Settings) -> None:
    cfg = settings.execution
    if cfg.venue == "live" and not cfg.allow_live:
        raise ConfigError(
            "execution.venue=live needs execution.allow_live=true as well (QE_EXECUTION__ALLOW_LIVE): "
            "live trading is never on by one setting alone"
        )
    if settings.embedded and cfg.venue != "paper":
        raise ConfigError(f"embedded mode runs the paper venue only (execution.venue={cfg.venue})")


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
        self._secrets: Any = None
        self.observing = self.cfg.mode == "observe"
        # Observe-only: the touch per symbol for hypothetical fills; orders never reach the engine's venue.
        self.touch = TouchBook()
        if venue is None and self.observing:
            # No client of any venue is built and no exchange key is read. The in-process paper book only
            # keeps the engine's flat position and heartbeats going; no order is ever placed on it.
            venue = paper_venue(settings)
            venue.name = OBSERVE_VENUE
            log.warning(
                "execution is observe-only: nothing is sent to any venue (execution.mode=observe)",
                extra={"configured_venue": self.cfg.venue},
            )
        if venue is None:
            check_venue_allowed(settings)
            if self.cfg.venue == "paper":
                venue = paper_venue(settings)
            else:
                if credentials is None:
                    credentials, self._secrets = load_exchange_credentials(settings)
                venue = binance_venue(settings, credentials)
        self.venue = venue
        self.lease: Any = None
        self._lease_store: Any = None
        self._lease_lost = False
        fenced = self.cfg.lease != "none"
        emitter = ObservingEmitter(bus) if self.observing else BusEmitter(bus)
        self.engine = ExecutionEngine(
            fencing.FencedVenue(venue, lambda: self.lease) if fenced else venue,
            fencing.FencedEmitter(emitter, lambda: self.lease) if fenced else emitter,
            EngineConfig.from_settings(settings),
            clock=clock or time.time_ns,
        )
        # Nothing is traded that risk did not sign (ConfigError here when risk's public keys cannot be had).
        self.keyring = keyring_for(settings, self.name)
        sig = settings.signing
        self.decision_gate = DecisionGate(
            self.keyring, int(sig.max_decision_age_s * 1e9), int(sig.max_clock_ahead_s * 1e9)
        )
        self.control_gate = ControlGate(self.keyring)
        self.clock: Callable[[], int] = clock or time.time_ns
        # On an injected market clock heartbeats follow that clock from the market path (risk's silence bound is
        # measured on it); the wall-clock housekeeping thread then sends none. 0: none sent on it yet.
        self._market_clocked = clock is not None
        self._last_beat_ns = 0
        self._beat_lock = threading.Lock()  # the market path and the lockstep tick both beat
        self._halt_in_force: control_pb2.HaltState | None = None
        self.servicer = ExecutionServicer(self)
        self._loop: ConsumerLoop | None = None
        self._market_loop: ConsumerLoop | None = None
        self.market_guard = bounds.MarketGuard()
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.started = False
        self.observed_reports = 0
        _gauges.add_owner(self)

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
            # Behind on books, only the newest top of book per symbol is applied; every trade is.
            coalesce=latest_books,
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

    # -- handlers ---------------------------------------------------------------------------------
    def _on_decision(self, decision: risk_pb2.RiskDecision, record: Record) -> None:
        key = (record.key or b"").decode(errors="replace")
        handled = self.engine.handled(decision)
        verdict = self.decision_gate.check(decision, key, (record.partition, record.offset), self.clock(), handled)
        if not verdict.ok:
            if verdict.code == signing.STALE:
                # Signed by risk and never seen before, only too old (or too far ahead): say so on the reports
                # topic so risk releases the entry now. A bad signature or a replay is never answered.
                self.engine.refuse_decision(decision, verdict.code, verdict.detail)
            raise Refused(verdict.code, verdict.detail)  # dead-lettered and audited; never the venue
        problem = bounds.check_decision(decision)
        if problem is not None:  # signed but absurd (NaN, 2^63-1 time stop): never the venue
            self.engine.refuse_decision(decision, problem.code, problem.detail)
        admit(problem)
        if self.observing:
            self._observe(decision)
            return
        order = self.engine.on_decision(decision)
        decided = decision.decided_time_ns or decision.intent.created_time_ns
        if order is not None and decided and order.venue_order_id:
            _decision_to_ack.record(max(0.0, (self.clock() - decided) / 1e6), {"venue": self.venue.name})

    def _observe(self, decision: risk_pb2.RiskDecision) -> None:
        """Observe-only: the decision's would-be order and its hypothetical fill, reported; nothing sent."""
        if not decision.approved:
            return
        touch = self.touch.get(decision.symbol or decision.intent.symbol)
        report = observed_report(decision, touch, self.cfg.paper_taker_fee_bps, self.clock())
        self.observed_reports += 1
        self.bus.publish(topics.REPORTS, report.order.symbol or None, report)
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

    def _on_market(self, event: market_pb2.MarketEvent, _record: Record) -> None:
        admit(self.market_guard.admit(event))  # the paper book and the marks never take a bad price
        self.touch.on_market(event)
        self.engine.on_market(event)
        if self._market_clocked:
            self._beat_on_clock()

    def tick(self, now_ns: int) -> None:
        """The lockstep present moved (registered in embedded.py): a heartbeat that fell due goes out now, on
        the marks of the step before, not on whichever of the new step's events a thread handled first."""
        if self._market_clocked:
            self._beat_on_clock(now_ns)

    def _beat_on_clock(self, now_ns: int | None = None) -> None:
        """A heartbeat once the market clock moved heartbeat_interval_s since the last (lockstep runs only).
        With ticks wired it is always the tick that beats; the market path is the fallback without them."""
        interval_ns = int(self.cfg.heartbeat_interval_s * 1e9)
        now = self.clock() if now_ns is None else now_ns
        with self._beat_lock:
            if not interval_ns or now - self._last_beat_ns < interval_ns:
                return
            self._last_beat_ns = now
        self.engine.heartbeat()

    def _on_control(self, event: control_pb2.ControlEvent, record: Record) -> None:
        key = (record.key or b"").decode(errors="replace")
        verdict = self.control_gate.check(event, key, (record.partition, record.offset))
        if not verdict.ok:
            raise Refused(verdict.code, verdict.detail)
        if not verdict.repeat and event.WhichOneof("payload") == "halt":
            self._apply_halt(event)
        elif not verdict.repeat and event.WhichOneof("payload") == "trading_state":
            self._apply_trading_state(event)

    def _apply_trading_state(self, event: control_pb2.ControlEvent) -> None:
        state = event.trading_state
        before = self.engine.reducing(state.symbol)
        self.engine.on_trading_state(state)
        if before != self.engine.reducing(state.symbol):
            log.info(
                "trading state changed",
                extra={
                    "scope": state.symbol or "account",
                    "state": risk_pb2.TradingState.Name(state.state),
                    "by": event.actor.subject,
                    "reason": event.reason,
                },
            )

    def _apply_halt(self, event: control_pb2.ControlEvent) -> None:
        # Risk re-asserts an unchanged state after an invalid record: nothing to do again (no second flatten).
        if self._halt_in_force is not None and self._halt_in_force == event.halt:
            return
        self._halt_in_force = control_pb2.HaltState()
        self._halt_in_force.CopyFrom(event.halt)
        was = self.engine.status().halted
        self.engine.on_halt(event.halt, cause=event.event_id, reason=event.reason)
        if was != event.halt.halted:
            log.info(
                "trading state changed",
                extra={
                    "state": "HALTED" if event.halt.halted else "ACTIVE",
                    "by": event.actor.subject,
                    "reason": event.reason,
                },
            )

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
                self._apply_trading_state(event)
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
            self._apply_halt(stored.latest[HALT_KEY])
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
        if path is None or not isinstance(venue, BinanceVenue):
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


class ExecutionServicer(execution_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, service: ExecutionService) -> None:
        self.service = service
        self.engine = service.engine
        self._submit_lock = threading.Lock()
        self._decisions: dict[str, risk_pb2.RiskDecision] = {}
        self._channel: grpc.Channel | None = None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> execution_pb2.ExecutionServiceGetStatusResponse:
        return self.engine.status()

    def ListOrders(self, request: execution_pb2.ListOrdersRequest, context: grpc.ServicerContext) -> Any:
        orders = self.engine.list_orders(request.symbol, request.open_only)
        return execution_pb2.ListOrdersResponse(orders=[order_to_pb(o) for o in orders])

    def ListPositions(self, request: Any, context: grpc.ServicerContext) -> Any:
        return execution_pb2.ListPositionsResponse(positions=[position_to_pb(p) for p in self.engine.list_positions()])

    def CancelAll(self, request: execution_pb2.CancelAllRequest, context: grpc.ServicerContext) -> Any:
        refuse_invalid(request, context)
        canceled = self.engine.cancel_all(request.symbol, request.reason or "operator")
        self.service.bus.flush()
        return execution_pb2.CancelAllResponse(canceled=canceled)

    def Flatten(self, request: execution_pb2.FlattenRequest, context: grpc.ServicerContext) -> Any:
        refuse_invalid(request, context)
        sent = self.engine.flatten(request.symbol, request.reason or "operator", cause=f"grpc-{uuid.uuid4().hex}")
        self.service.bus.flush()
        return execution_pb2.FlattenResponse(orders_sent=sent)

    def SubmitOrder(self, request: execution_pb2.SubmitOrderRequest, context: grpc.ServicerContext) -> Any:
        """A manual order: risk reviews it (ReviewOrder) and only an approved decision is placed.

        Risk also publishes that decision on risk.decisions.v1, which this service consumes: both paths
        derive the client order id from the same intent id, so whichever comes first places the order and
        the other finds it. The same request_id returns the same order.
        """
        refuse_invalid(request, context)
        problem = validate_submit(request)
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        if self.service.observing:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "execution is observe-only (execution.mode=observe): no order is sent to any venue",
            )
        intent_id = f"manual-{request.request_id or uuid.uuid4().hex}"
        with self._submit_lock:
            existing = self._existing(intent_id)
            if existing is not None:
                decision = self._decisions.get(intent_id) or risk_pb2.RiskDecision(
                    approved=True, symbol=existing.symbol, reasons=["request already handled: same order returned"]
                )
                return execution_pb2.SubmitOrderResponse(decision=decision, order=order_to_pb(existing))
            decision = self._review(self._intent(request, intent_id), context)
            self._decisions[intent_id] = decision
            response = execution_pb2.SubmitOrderResponse(decision=decision)
            if not decision.approved:
                return response
            order = self.engine.on_decision(decision) or self._existing(intent_id)
            self.service.bus.flush()
            if order is not None:
                response.order.CopyFrom(order_to_pb(order))
            return response

    def _existing(self, intent_id: str) -> Any:
        for kind in (ids.ENTRY, ids.EXIT):
            order = self.engine.orders.get(ids.order_id(kind, intent_id))
            if order is not None:
                return order
        return None

    def _intent(self, request: execution_pb2.SubmitOrderRequest, intent_id: str) -> risk_pb2.OrderIntent:
        mark = self.engine.marks.get(request.symbol)
        # Kind left unspecified: risk decides entry or exit from its own ledger.
        return risk_pb2.OrderIntent(
            intent_id=intent_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            quantity=request.quantity,
            limit_price=request.limit_price,
            take_profit_price=request.take_profit_price,
            stop_loss_price=request.stop_loss_price,
            created_time_ns=self.service.clock(),
            reference_price=float(mark) if mark else request.limit_price,
        )

    def _review(self, intent: risk_pb2.OrderIntent, context: grpc.ServicerContext) -> risk_pb2.RiskDecision:
        """Risk decides on manual orders too; no answer, or one that fails verification, means no order."""
        address = self.service.cfg.risk_address or f"127.0.0.1:{self.service.settings.ports.risk}"
        if self._channel is None:
            self._channel = self._open_channel(address)
        try:
            answer = risk_pb2_grpc.RiskServiceStub(self._channel).ReviewOrder(
                risk_pb2.ReviewOrderRequest(intent=intent),
                timeout=self.service.cfg.risk_timeout_s,
                metadata=forward_metadata(),  # the caller's token: risk authenticates the operator again
            )
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                context.abort(code, f"risk refused the review: {exc.details()}")
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"risk service at {address} did not review the order ({code.name}): refused, fail closed",
            )
        decision = answer.decision
        verdict = self.service.decision_gate.check(decision, decision.symbol, None, self.service.clock())
        if not verdict.ok:
            self.service.refuse_answer("/quantumedge.v1.ExecutionService/SubmitOrder", verdict)
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"risk's answer failed verification ({verdict.code}): refused, fail closed",
            )
        return decision

    def _open_channel(self, address: str) -> grpc.Channel:
        """Plaintext, or with mutual TLS on: execution presents its own certificate (its service identity)."""
        settings = self.service.settings
        credentials = channel_credentials_from_settings(settings.vault)
        if credentials is None:
            return grpc.insecure_channel(address)
        name = settings.grpc.tls_server_name
        options = [("grpc.ssl_target_name_override", name)] if name else []
        return grpc.secure_channel(address, credentials, options=options)


def validate_submit(request: execution_pb2.SubmitOrderRequest) -> str:
    """The first problem with a SubmitOrder request, naming the field; "" when it is valid."""
    if not request.symbol or not request.symbol.isalnum() or not request.symbol.isupper():
        return "symbol is required (upper-case letters and digits, e.g. BTCUSDT)"
    if request.side not in (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL):
        return "side must be SIDE_BUY or SIDE_SELL"
    if request.order_type not in (risk_pb2.ORDER_TYPE_MARKET, risk_pb2.ORDER_TYPE_LIMIT):
        return "order_type must be ORDER_TYPE_MARKET or ORDER_TYPE_LIMIT"
    if not math.isfinite(request.quantity) or request.quantity <= 0 or request.quantity > bounds.MAX_QUANTITY:
        return "quantity must be a positive number"
    for name in ("limit_price", "take_profit_price", "stop_loss_price"):
        value = getattr(request, name)
        if not math.isfinite(value) or value < 0 or value > bounds.MAX_PRICE:
            return f"{name} must be zero (unset) or a positive number"
    if request.order_type == risk_pb2.ORDER_TYPE_LIMIT and request.limit_price <= 0:
        return "limit_price is required for ORDER_TYPE_LIMIT"
    if request.order_type == risk_pb2.ORDER_TYPE_MARKET:
        if request.limit_price:
            return "limit_price must be unset for ORDER_TYPE_MARKET"
        if request.time_in_force != risk_pb2.TIME_IN_FORCE_UNSPECIFIED:
            return "time_in_force applies to ORDER_TYPE_LIMIT only"
    tp, sl = request.take_profit_price, request.stop_loss_price
    if tp and sl and (tp <= sl if request.side == common_pb2.SIDE_BUY else tp >= sl):
        return "take_profit_price and stop_loss_price are on the wrong sides for this side"
    if len(request.request_id) > 128:
        return "request_id must be at most 128 characters"
    return ""
