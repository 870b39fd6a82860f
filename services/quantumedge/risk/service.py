"""The risk service: the engine on the bus, and the quantumedge.v1.RiskService gRPC API.

Consumes signals, execution reports, top of book, depth and control events; publishes a signed decision
for every signal on risk.decisions.v1, signed halt state and limits on the compacted control.v1, and audits
on audit.v1. On start it rebuilds halt and limits from the newest *valid* control.v1 records and PnL, peak
and streaks from execution.reports.v1, so a restarted halted risk service stays halted. A control record
that fails verification (forged, replayed, stale, a tombstone) is dead-lettered and audited, and risk
publishes its current state again so the compacted topic's last word under that key stays genuine.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from quantumedge.risk import checkpoint
from quantumedge.risk import moderator as moderation
from quantumedge.risk.app import AUTO_ACTOR, RiskApp
from quantumedge.risk.checkpointing import Checkpointer
from quantumedge.risk.domain.engine import Decided
from quantumedge.risk.domain.limit_config import InvalidLimitsError
from quantumedge.risk.domain.limits import Breach
from quantumedge.risk.domain.reasons import primary_code
from quantumedge.risk.domain.state_records import restore_states
from quantumedge.risk.domain.trading_state import ACCOUNT
from quantumedge.risk.metrics import decisions as _decisions
from quantumedge.risk.metrics import gauges as _gauges
from quantumedge.risk.metrics import halts as _halts
from quantumedge.risk.metrics import tick_to_decision as _tick_to_decision
from quantumedge.risk.moderator_client import ModeratorClient, moderator_for
from quantumedge.risk.servicer import RiskServicer
from quantumedge.shared import bounds, topics
from quantumedge.shared.admission import (
    HALT_KEY,
    LIMITS_KEY,
    StoredRecord,
    StoredState,
    expected_payload,
    stored_state,
)
from quantumedge.shared.audit import refusal_audit
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.bus.loop import ConsumerLoop, Refused, admit
from quantumedge.shared.grpc_server import ServiceBinding
from quantumedge.shared.keyring import keyring_for
from quantumedge.shared.logs import get_logger
from quantumedge.shared.service import ServiceBase
from quantumedge.v1 import (
    common_pb2,
    control_pb2,
    execution_pb2,
    market_pb2,
    risk_pb2,
    risk_pb2_grpc,
    signal_pb2,
)

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

log = get_logger(__name__)


class _NotRebuiltError(BaseException):
    """Escapes the consumer loop's per-record error handling on purpose (no dead letter, no commit)."""


class RiskService(ServiceBase):
    name = "risk"

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        clock: Callable[[], int] = time.time_ns,
        moderator: ModeratorClient | None = None,
    ) -> None:
        super().__init__(settings, bus)
        self.clock = clock
        self.symbols = list(settings.symbols)
        # One lock around the engine: the consumer thread and gRPC threads both use it.
        self.lock = threading.RLock()
        self._ready = threading.Event()
        self._rebuilt = False
        self.rebuild_skipped: dict[str, int] = {}
        self._loop: ConsumerLoop | None = None
        self._control_loop: ConsumerLoop | None = None
        self._snapshot: tuple[float, risk_pb2.RiskServiceGetStatusResponse] | None = None
        # Equity history for operators (the console's curve): one point a second at most, bounded.
        self.equity_curve: deque[risk_pb2.EquityPoint] = deque(maxlen=settings.risk.decision_index_size)
        # Risk signs what it publishes and verifies control records before applying them (ConfigError here
        # when no key can be had: risk never publishes an unsigned decision).
        self.keyring = keyring_for(settings, self.name)
        # Risk's one wiring (risk/app.py), shared with the backtester: this service adds the bus, threads,
        # the lock, start-up rebuild, checkpoints, the gRPC API and the moderator around it.
        self.app = RiskApp(settings.risk, self.keyring, bus.publish, _ServiceObserver())
        self.engine = self.app.engine
        self.control_gate = self.app.control_gate
        self._audit_refusal = refusal_audit(bus, self.name)
        # The signed ledger checkpoint: start-up restores it and replays only the reports after it.
        self.checkpointer = Checkpointer(bus, self.keyring, settings.risk, clock)
        self.rebuild_from = ""  # "checkpoint" or "reports" once rebuilt
        self.rebuild_read = 0  # records of execution.reports.v1 the start-up read
        # The optional LLM moderator of entries (None when disabled; its key from Vault or risk does not start).
        self.moderator = moderator or moderator_for(settings)
        self.servicer = RiskServicer(self)
        _gauges.add_owner(self)

    @property
    def _limits_time_ns(self) -> int:
        return self.app.limits_time_ns

    @_limits_time_ns.setter
    def _limits_time_ns(self, value: int) -> None:
        self.app.limits_time_ns = value

    # -- lifecycle -----------------------------------------------------------------------------------
    def grpc_services(self) -> list[ServiceBinding]:
        return [(risk_pb2_grpc.add_RiskServiceServicer_to_server, self.servicer, "quantumedge.v1.RiskService")]

    def start(self) -> None:
        # Join the group first (its position is fixed once assigned), then rebuild from the topics' history;
        # handlers wait for the rebuild, and reports seen by both paths are deduplicated by report id.
        # Two members of the one group (its ACL is unchanged): control records alone in one thread, so a halt,
        # new limits or a trading state never wait behind signals, reports or a backlog of market data in the
        # other. Each loop commits only what it handled; the engine's lock serialises them. Control joins first.
        self._control_loop = ConsumerLoop(
            self.bus,
            group=self.name,
            handlers={topics.CONTROL: self._on_control},
            on_refused=self._on_refused,
            thread_name=f"{self.name}-control",
        )
        self._control_loop.start()
        self._loop = ConsumerLoop(
            self.bus,
            group=self.name,
            handlers={
                topics.SIGNALS: self._on_signal,
                topics.REPORTS: self._on_report,
                topics.BOOK: self._on_market,
                topics.DEPTH: self._on_market,
            },
            on_refused=self._on_refused,
            thread_name=f"{self.name}-flow",
        )
        self._loop.start()
        try:
            self.rebuild()
            self._rebuilt = True
        finally:
            self._ready.set()

    def stop(self) -> None:
        self._ready.set()
        for loop in (self._control_loop, self._loop):
            if loop is not None:
                loop.stop()
        if self._rebuilt:
            self._checkpoint_at_stop()
        self.bus.flush()
        self.keyring.close()
        if self.moderator is not None:
            self.moderator.close()

    def _checkpoint_at_stop(self) -> None:
        """The ledger as the loop left it, so the next start replays nothing it already folded in."""
        try:
            with self.lock:
                self.checkpointer.write(
                    self.engine.ledger, self.engine.halt.acknowledged_ns, self.engine.limits.order_window_ns
                )
        except Exception as exc:  # the next start replays more; it never loses anything for a missing checkpoint
            log.warning("risk checkpoint not written at stop", extra={"error": repr(exc)})

    def _write_checkpoint(self) -> None:
        """Lock held."""
        engine = self.engine
        self.checkpointer.write(engine.ledger, engine.halt.acknowledged_ns, engine.limits.order_window_ns)

    def healthy(self) -> bool:
        return all(loop.alive for loop in (self._control_loop, self._loop) if loop is not None)

    def status_line(self) -> dict[str, Any]:
        with self.lock:
            c = self.engine.counters
            return {
                "halted": self.engine.halted,
                "signals": c.signals_seen,
                "approved": c.approved,
                "rejected": c.rejected,
                "equity": round(self.engine.ledger.equity, 2),
            }

    def snapshot(self, max_age_s: float = 0.5) -> risk_pb2.RiskServiceGetStatusResponse:
        """GetStatus, reused for max_age_s so one scrape of several gauges computes it once."""
        cached = self._snapshot
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        with self.lock:
            status = self.engine.status(self.clock(), self.symbols)
        self._snapshot = (time.monotonic(), status)
        return status

    def _sample_equity(self, now: int) -> None:
        """Called with the lock held, after the ledger moved."""
        if self.equity_curve and now - self.equity_curve[-1].time_ns < 1_000_000_000:
            return
        led = self.engine.ledger
        self.equity_curve.append(risk_pb2.EquityPoint(time_ns=now, equity=led.equity, drawdown=led.drawdown))

    def trading_state(self) -> str:
        """The account's state: HALTED, REDUCING (exits only) or ACTIVE."""
        if self.engine.halted:
            return "HALTED"
        return "REDUCING" if self.engine.trading.scope(ACCOUNT).causes else "ACTIVE"

    def rebuild(self) -> None:
        """Halt state and limits from control.v1, then PnL, peak, streaks and positions from execution reports."""
        stored, stale_keys = self._read_control()
        cp = self.checkpointer.load() if self.checkpointer.enabled else None
        tail = self.checkpointer.read_reports(dict(cp.report_offsets) if cp is not None else {})
        self.rebuild_skipped, self.rebuild_read = tail.skipped, tail.read
        self.rebuild_from = "checkpoint" if cp is not None else "reports"
        now = self.clock()
        with self.lock:
            acknowledged = self._restore_control(stored, now)
            if cp is not None:
                checkpoint.restore(self.engine.ledger, cp)
                # An acknowledgement the checkpoint already reflects must not wipe the losses that came after it.
                acknowledged = acknowledged if acknowledged > cp.acknowledged_ns else 0
            self.engine.ledger.replay(tail.reports, acknowledged)
            self.engine.ledger.roll_day(now)
            breach = self.engine.check_auto_halt(now)
            if breach is not None:
                self._publish_auto_halt(breach)
            for key in stale_keys:
                self._reassert(key)
            self.publish_states(AUTO_ACTOR, "trading state at start-up")
            log.info(
                "risk state rebuilt",
                extra={
                    "halted": self.engine.halted,
                    "from": self.rebuild_from,
                    "reports": tail.read,
                    "equity": round(self.engine.ledger.equity, 2),
                    "loss_streak": self.engine.ledger.loss_streak,
                },
            )
        self.bus.flush()

    def _read_control(self) -> tuple[StoredState, list[str]]:
        """The newest valid control.v1 record per key, and the keys whose last record is not that one."""
        records = self.bus.read_all(topics.CONTROL, timeout_s=self.settings.risk.rebuild_timeout_s)
        stored = stored_state(
            (StoredRecord((r.key or b"").decode(errors="replace"), r.value, (r.partition, r.offset)) for r in records),
            self.control_gate,
        )
        for rec, verdict in stored.refused:
            log.warning(
                "stored control record refused",
                extra={"key": rec.key, "position": rec.position, "code": verdict.code, "detail": verdict.detail},
            )
        latest = stored.latest
        # The last record under a key, by offset, is what compaction keeps: when it is not the valid state we use,
        # publish that state again so a later start (or execution) reads a genuine one.
        last_by_key = {(r.key or b"").decode(errors="replace"): r for r in records}
        stale_keys = [
            k
            for k in last_by_key
            if expected_payload(k) and (k not in latest or not _same_event(last_by_key[k], latest[k]))
        ]
        return stored, stale_keys

    def _restore_control(self, stored: StoredState, now: int) -> int:
        """Lock held: apply the stored limits, halt and trading states; the halt's acknowledgement time (0: none)."""
        latest = stored.latest
        if LIMITS_KEY in latest and latest[LIMITS_KEY].HasField("limits"):
            try:
                self.engine.set_limits(latest[LIMITS_KEY].limits)
                self._limits_time_ns = latest[LIMITS_KEY].time_ns
            except InvalidLimitsError as exc:
                log.error("stored limits invalid, keeping configured ones", extra={"error": str(exc)})
        acknowledged = 0
        if HALT_KEY in latest and latest[HALT_KEY].HasField("halt"):
            event = latest[HALT_KEY]
            self.engine.set_halt(event.halt, event.reason)
            acknowledged = event.halt.acknowledged_ns
        elif HALT_KEY in stored.unverifiable:
            # Records exist under "halt" but none verifies: the state is unknown, so fail closed.
            reason = f"halt state on control.v1 failed verification ({stored.unverifiable[HALT_KEY]})"
            self.engine.halt_now(reason, False, False, now)
            self.publish_audit(AUTO_ACTOR, "Rebuild", None, f"halted: {reason}", reason)
            log.error("stored halt state unverifiable: halted until an operator resumes", extra={"why": reason})
        for scope in restore_states(self.engine.trading, stored, now):
            log.error(
                "stored trading state unverifiable: exits only until an operator activates", extra={"scope": scope}
            )
        return acknowledged

    # -- handlers (consumer thread) ------------------------------------------------------------------
    def _wait_ready(self) -> None:
        self._ready.wait()
        if not self._rebuilt:
            # Start-up failed: end the loop without committing, so nothing is consumed on a state never rebuilt.
            raise _NotRebuiltError("risk state was never rebuilt; records left uncommitted")

    def _on_signal(self, signal: signal_pb2.Signal, _record: Record) -> None:
        self._wait_ready()
        admit(bounds.check_signal(signal))
        with self.lock:
            now = self.clock()
            decided = self.app.on_signal(signal, now)
        self._publish_decided(decided, now)

    def _publish_decided(self, decided: list[Decided], now: int) -> None:
        """Publish decisions in order: entries through the moderator when there is one."""
        for signal, decision in decided:
            with self.lock:
                fills = self.moderator.recent_fills() if self.moderator else []
                context = moderation.prepare(self.engine, signal, decision, fills, now) if self.moderator else None
                if context is None:
                    self.app.publish_decided([(signal, decision)], now)
            if context is not None and self.moderator is not None:
                # Outside the lock, bounded by the moderator's budget: gRPC calls are not held by the model.
                outcome = self.moderator.review(context)
                with self.lock:
                    moderation.settle(self.engine, decision, outcome)
                    self.app.publish_decided([(signal, decision)], now)

    def _on_report(self, report: execution_pb2.ExecutionReport, record: Record) -> None:
        self._wait_ready()
        if self.checkpointer.seen(record):
            return  # folded in (or skipped) by the start-up read already
        self.checkpointer.note(record)
        admit(bounds.check_report(report))
        with self.lock:
            now = self.clock()
            expired = self.app.on_report(report, now)
            if self.checkpointer.due(now):
                self.checkpointer.write(
                    self.engine.ledger, self.engine.halt.acknowledged_ns, self.engine.limits.order_window_ns
                )
            if self.moderator is not None:
                self.moderator.note_report(report)
            self._sample_equity(now)
        self._publish_decided(expired, now)

    def _on_market(self, event: market_pb2.MarketEvent, _record: Record) -> None:
        self._wait_ready()
        with self.lock:
            admit(self.app.admit_market(event))
            now = self.clock()
            released = self.app.on_market(event, now)
            self._sample_equity(now)
        self._publish_decided(released, now)

    def _on_control(self, event: control_pb2.ControlEvent, record: Record) -> None:
        self._wait_ready()
        key = (record.key or b"").decode(errors="replace")
        # Our own publications come back as repeats (the gate noted them), copies of anything as replays. Under
        # the lock: this thread is not the one publishing our states (note_own), and check-then-set must not race.
        with self.lock:
            verdict = self.app.on_control(event, key, (record.partition, record.offset))
        if not verdict.ok:
            raise Refused(verdict.code, verdict.detail)

    def _on_refused(self, record: Record, code: str, detail: str) -> None:
        """A refused record: audited; when it sat under a state key of control.v1, our state goes out again."""
        self._audit_refusal(record, code, detail)
        key = (record.key or b"").decode(errors="replace")
        if record.topic == topics.CONTROL and expected_payload(key) and self._rebuilt:
            with self.lock:
                self._reassert(key)

    def _reassert(self, key: str) -> None:
        """Publish the halt state, a trading state or the limits in force again (lock held)."""
        self.app.reassert(key, self.clock())
        log.warning("control state re-asserted", extra={"key": key})

    # -- publishing (risk/app.py; the servicer's time is the wall clock) ---------------------------------
    def publish_decision(self, decision: risk_pb2.RiskDecision) -> None:
        self.app.publish_decision(decision)

    def publish_control(self, key: str, event: control_pb2.ControlEvent) -> control_pb2.ControlEvent:
        return self.app.publish_control(key, event, self.clock())

    def publish_audit(
        self, actor: common_pb2.Actor, method: str, request: Message | None, outcome: str, reason: str = ""
    ) -> None:
        self.app.publish_audit(actor, method, request, outcome, reason, self.clock())

    def publish_states(self, actor: common_pb2.Actor, reason: str = "") -> list[str]:
        """Lock held."""
        return self.app.publish_states(actor, self.clock(), reason)

    def publish_halt_state(self, actor: common_pb2.Actor, reason: str) -> None:
        self.app.publish_halt_state(actor, reason, self.clock())

    def _publish_auto_halt(self, breach: Breach) -> None:
        self.app.publish_auto_halt(breach, self.clock())


class _ServiceObserver:
    """Risk's metrics and logs for what the app reports (risk/metrics.py)."""

    def decided(self, signal: signal_pb2.Signal, decision: risk_pb2.RiskDecision, now_ns: int) -> None:
        labels = {"approved": decision.approved, "reason": primary_code(decision), "symbol": decision.symbol}
        _decisions.add(1, labels)
        if signal.event_time_ns > 0:
            _tick_to_decision.record(max(0.0, (now_ns - signal.event_time_ns) / 1e6), {"symbol": decision.symbol})

    def halted(self, breach: Breach, now_ns: int) -> None:
        log.warning(
            "risk limit breached: trading halted",
            extra={"limit": breach.limit, "value": breach.value, "threshold": breach.threshold},
        )
        _halts.add(1, {"cause": breach.limit})

    def state_changed(self, scope: str, state: str, why: str) -> None:
        log.warning("trading state changed", extra={"scope": scope or "account", "state": state, "why": why})


def _same_event(record: Record, event: control_pb2.ControlEvent) -> bool:
    try:
        return control_pb2.ControlEvent.FromString(record.value or b"").event_id == event.event_id
    except Exception:
        return False
