"""A running RiskService on a bus (in-process or Kafka) with its real gRPC server, and helpers that act
like its neighbours: ingest (market events), inference (signals) and execution (reports)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

import grpc

from quantumedge.risk.moderator_client import ModeratorClient
from quantumedge.risk.service import RiskService
from quantumedge.risk.settings import RiskSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.auth import OperatorAuthInterceptor, OperatorTokens, bus_audit, token_sha256
from quantumedge.shared.bus import Bus
from quantumedge.shared.config import KafkaSettings
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.shared.security_settings import SigningSettings
from quantumedge.v1 import control_pb2, execution_pb2, market_pb2, risk_pb2, risk_pb2_grpc, signal_pb2
from tests.support.risk_builders import FakeClock, book
from tests.support.signing import session_signing_settings
from tests.support.waiting import wait_for

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
OPERATOR_SUBJECT = "alice"
RISK_CHANGING_CALLS = [
    "/quantumedge.v1.RiskService/" + m for m in ("Halt", "Resume", "UpdateLimits", "Reduce", "Activate")
]
PRICES = {"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}


def make_settings(risk: RiskSettings, bus: str = "memory", kafka: KafkaSettings | None = None) -> Settings:
    # On Kafka the keys are the test session's (on the in-process bus, the process's own in-memory pair).
    signing = session_signing_settings() if bus == "kafka" else SigningSettings()
    return Settings(bus=bus, symbols=list(SYMBOLS), risk=risk, kafka=kafka or KafkaSettings(), signing=signing)


class Watcher:
    """Collects what risk publishes: decisions, control events and audits (a consumer group of its own)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.consumer = bus.consumer(
            f"risk-test-{uuid.uuid4().hex[:8]}", [topics.DECISIONS, topics.CONTROL, topics.AUDIT], True
        )
        wait = getattr(self.consumer, "wait_assigned", None)
        if wait is not None:
            wait()
        self.decisions: list[risk_pb2.RiskDecision] = []
        self.control: list[tuple[str, control_pb2.ControlEvent]] = []
        self.audit: list[control_pb2.ControlEvent] = []

    def drain(self) -> None:
        for rec in self.consumer.poll(0.05, 5000):
            if rec.topic == topics.DECISIONS:
                self.decisions.append(risk_pb2.RiskDecision.FromString(rec.value))
            elif rec.topic == topics.CONTROL:
                self.control.append(((rec.key or b"").decode(), control_pb2.ControlEvent.FromString(rec.value)))
            elif rec.topic == topics.AUDIT:
                self.audit.append(control_pb2.ControlEvent.FromString(rec.value))

    def decision_for(self, signal_id: str, timeout_s: float = 20.0) -> risk_pb2.RiskDecision:
        def found() -> risk_pb2.RiskDecision | None:
            self.drain()
            return next((d for d in self.decisions if d.signal_id == signal_id), None)

        return wait_for(found, timeout_s, f"decision for signal {signal_id}")  # type: ignore[return-value]

    def events(self, key: str) -> list[control_pb2.ControlEvent]:
        """Control events published under `key` so far."""
        self.drain()
        return [e for k, e in self.control if k == key]

    def halts(self) -> list[control_pb2.ControlEvent]:
        return self.events("halt")

    def decisions_where(self, predicate) -> list[risk_pb2.RiskDecision]:
        self.drain()
        return [d for d in self.decisions if predicate(d)]

    def wait_halt(self, predicate=lambda e: e.halt.halted, timeout_s: float = 20.0) -> control_pb2.ControlEvent:
        return wait_for(
            lambda: next((e for e in reversed(self.halts()) if predicate(e)), None), timeout_s, "halt on control.v1"
        )  # type: ignore[return-value]

    def audits(self) -> list[control_pb2.ControlEvent]:
        """Audit records: on audit.v1, never on the compacted control.v1."""
        self.drain()
        odd = [k for k, _ in self.control if k not in ("halt", "limits") and not k.startswith("state:")]
        assert not odd, "only state records on control.v1"
        return list(self.audit)

    def close(self) -> None:
        self.consumer.close()


class Rig:
    def __init__(
        self,
        bus: Bus,
        risk: RiskSettings,
        clock: FakeClock | None = None,
        bus_kind: str = "memory",
        kafka: KafkaSettings | None = None,
        moderator: ModeratorClient | None = None,
    ) -> None:
        self.bus = bus
        self.moderator = moderator
        self.clock = clock or FakeClock()
        self.settings = make_settings(risk, bus_kind, kafka)
        self.watcher = Watcher(bus)
        self.service: RiskService | None = None
        self.server: GrpcServer | None = None
        self.channel: grpc.Channel | None = None
        self.stub: risk_pb2_grpc.RiskServiceStub | None = None
        self._reports = 0
        # The real operator-auth interceptor in front of the servicer, with a token made up for this run.
        self._token = secrets.token_urlsafe(24)
        self.operator = (("authorization", f"Bearer {self._token}"),)

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> RiskService:
        self.service = RiskService(self.settings, self.bus, clock=self.clock, moderator=self.moderator)
        interceptor = OperatorAuthInterceptor(
            OperatorTokens({OPERATOR_SUBJECT: token_sha256(self._token)}),
            bus_audit(self.bus, "risk"),
            protected=RISK_CHANGING_CALLS,
            service="risk",
        )
        self.server = GrpcServer(0, self.service.grpc_services(), interceptors=[interceptor], host="127.0.0.1")
        self.server.start()
        self.service.start()
        self.server.set_serving(True)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")
        self.stub = risk_pb2_grpc.RiskServiceStub(self.channel)
        self._reports = self.status().execution_reports_seen
        return self.service

    def set_risk(self, **changes: object) -> None:
        """Risk settings for the next start()."""
        self.settings = self.settings.model_copy(update={"risk": self.settings.risk.model_copy(update=changes)})

    def stop_service(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.server is not None:
            self.server.stop(0)
        if self.service is not None:
            self.service.stop()
        self.service = self.server = self.channel = self.stub = None

    def close(self, close_bus: bool = False) -> None:
        self.stop_service()
        self.watcher.close()
        if close_bus:
            self.bus.close()

    # -- neighbours ----------------------------------------------------------------------------------
    def market(self, symbols: Iterable[str] = SYMBOLS, spread_bps: float = 0.4) -> None:
        """Fresh top of book for each symbol, stamped now; waits until risk has it."""
        self.clock.advance(1e-9)  # a new stamp, so waiting for it below proves these events were handled
        for sym in symbols:
            mid = PRICES[sym]
            half = mid * spread_bps / 20_000
            self.bus.publish(topics.BOOK, sym, book(sym, mid - half, mid + half, self.clock.now))
        self.bus.flush()
        now = self.clock.now
        wait_for(lambda: self.status().last_market_data_ns >= now, what="market data seen by risk")

    def market_event(self, event: market_pb2.MarketEvent) -> None:
        topic = topics.market_topic_for(event.WhichOneof("payload"))
        self.bus.publish(topic, event.symbol, event)
        self.bus.flush()

    def reports(self, reports: Iterable[execution_pb2.ExecutionReport]) -> None:
        """Publish execution reports as execution does; waits until risk has learned them all."""
        count = 0
        for r in reports:
            self.bus.publish(topics.REPORTS, r.position.symbol or r.order.symbol or None, r)
            count += 1
        self.bus.flush()
        self._reports += count
        target = self._reports
        wait_for(lambda: self.status().execution_reports_seen >= target, what=f"{target} reports seen by risk")

    def decide(self, signal: signal_pb2.Signal) -> risk_pb2.RiskDecision:
        self.bus.publish(topics.SIGNALS, signal.symbol, signal)
        self.bus.flush()
        return self.watcher.decision_for(signal.signal_id)

    # -- API -----------------------------------------------------------------------------------------
    def status(self) -> risk_pb2.RiskServiceGetStatusResponse:
        assert self.stub is not None
        return self.stub.GetStatus(risk_pb2.RiskServiceGetStatusRequest())
