"""The LLM risk moderator: every outcome against a local chat-completions server over real HTTP, through the real
RiskService and its gRPC API, with the verdict on the published decision, in ExplainDecision / ListDecisions, and
in the telemetry (metrics and a span per call)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from quantumedge.risk import moderator as moderation
from quantumedge.risk.domain.policy import floor_to_step
from quantumedge.risk.domain.reasons import decision_codes, primary_code
from quantumedge.risk.moderator_client import ModeratorClient, ModeratorTelemetry
from quantumedge.risk.moderator_settings import ModeratorSettings
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import risk_pb2
from tests.peers.chat_completions import ChatCompletionsPeer
from tests.support.risk_builders import quiet_settings, signal, snapshot
from tests.support.risk_rig import Rig

KEY = "sk-test-moderator-key"
BUDGET_MS = 400.0


class Telemetry:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.instruments = ModeratorTelemetry(
            MeterProvider(metric_readers=[self.reader]).get_meter("test"), tracer_provider.get_tracer("test")
        )

    def points(self, name: str) -> list[tuple[dict, float]]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        for p in metric.data.data_points:
                            out.append((dict(p.attributes), getattr(p, "value", getattr(p, "count", 0))))
        return out


@pytest.fixture
def peer() -> Iterator[ChatCompletionsPeer]:
    p = ChatCompletionsPeer(KEY).start()
    yield p
    p.stop()


def _rig(peer: ChatCompletionsPeer, fail_policy: str = "deny", **mod: object) -> tuple[Rig, Telemetry]:
    settings = ModeratorSettings(
        enabled=True, base_url=peer.base_url, model="risk-judge", budget_ms=BUDGET_MS, fail_policy=fail_policy, **mod
    )
    tel = Telemetry()
    client = ModeratorClient(settings, KEY, tel.instruments)
    rig = Rig(MemoryBus(), quiet_settings(moderator=settings), moderator=client)
    rig.start()
    rig.reports([snapshot(rig.clock.now)])
    rig.market()
    return rig, tel


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.close()


CASES = [
    # mode, fail policy, approved, code, status on the decision
    ("allow", "deny", True, "moderator_allow", "reviewed"),
    ("deny", "deny", False, "moderator_deny", "reviewed"),
    ("reduce", "deny", True, "moderator_reduce", "reviewed"),
    ("hang", "deny", False, "moderator_timeout", "unavailable"),
    ("hang", "allow", True, "moderator_timeout", "unavailable"),
    ("malformed", "deny", False, "moderator_malformed", "unavailable"),
    ("bad_schema", "deny", False, "moderator_malformed", "unavailable"),
    ("rate_limited", "deny", False, "moderator_rate_limited", "unavailable"),
    ("rate_limited", "allow", True, "moderator_rate_limited", "unavailable"),
    ("failing", "deny", False, "moderator_error", "unavailable"),
    ("failing", "allow", True, "moderator_error", "unavailable"),
]


@pytest.fixture(scope="module")
def unmoderated_qty() -> float:
    """What the limits allow for the cases' signal (the moderator allowing): one baseline rig for every case."""
    peer = ChatCompletionsPeer(KEY, mode="allow").start()
    try:
        rig, _ = _rig(peer)
        try:
            return rig.decide(signal("BTCUSDT", t_ns=rig.clock.now)).intent.quantity
        finally:
            rig.close()
    finally:
        peer.stop()


@pytest.mark.parametrize(("mode", "fail_policy", "approved", "code", "status"), CASES)
def test_each_outcome_is_on_the_decision_and_in_telemetry(
    peer: ChatCompletionsPeer,
    rigs: list[Rig],
    unmoderated_qty: float,
    mode: str,
    fail_policy: str,
    approved: bool,
    code: str,
    status: str,
) -> None:
    peer.mode = mode
    rig, tel = _rig(peer, fail_policy)
    rigs.append(rig)
    decision = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))

    assert decision.approved is approved
    assert decision.moderator.code == code and decision.moderator.status == status
    assert code in decision_codes(decision)
    if not approved:
        assert primary_code(decision) == code and not decision.HasField("intent")
    if mode == "reduce":
        assert decision.moderator.size_factor == 0.5
        # Half of what the limits allowed, floored to the symbol's lot step.
        assert decision.intent.quantity == floor_to_step(
            unmoderated_qty * 0.5, rig.service.engine.filter_for("BTCUSDT").step_size
        )
    if status == "reviewed":
        assert decision.moderator.prompt_tokens > 0 and decision.moderator.completion_tokens > 0
    # Never beyond the budget (plus scheduling slack): the consumer is not held by a hung endpoint.
    assert decision.moderator.latency_ms < BUDGET_MS + 250
    # The same record through the API, signed as published.
    explained = rig.stub.ExplainDecision(risk_pb2.ExplainDecisionRequest(decision_id=decision.decision_id)).decision
    assert explained == decision and explained.signature.key_id
    listed = rig.stub.ListDecisions(risk_pb2.ListDecisionsRequest(reason=code)).decisions
    assert [d.decision_id for d in listed] == [decision.decision_id]
    # Telemetry: one outcome, its latency, failures by kind, tokens; one span with the outcome.
    outcomes = {a["outcome"]: v for a, v in tel.points("qe.risk.moderator.outcomes")}
    assert sum(outcomes.values()) == 1
    assert [a["outcome"] for a, _ in tel.points("qe.risk.moderator.latency")] == list(outcomes)
    failures = {a["kind"]: v for a, v in tel.points("qe.risk.moderator.failures") if v}
    if status == "reviewed":
        assert outcomes == {mode: 1} and not failures
        tokens = {a["kind"]: v for a, v in tel.points("qe.risk.moderator.tokens")}
        assert tokens["prompt"] == decision.moderator.prompt_tokens > 0
    else:
        kind = code.removeprefix("moderator_")
        assert outcomes == {kind: 1} and failures == {kind: 1}
    spans = [s for s in tel.spans.get_finished_spans() if s.name == "risk.moderator.review"]
    assert len(spans) == 1 and spans[0].attributes["qe.moderator.outcome"] == next(iter(outcomes))


def test_the_request_is_the_documented_compact_context(peer: ChatCompletionsPeer, rigs: list[Rig]) -> None:
    rig, _ = _rig(peer)
    rigs.append(rig)
    rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    (body,) = peer.requests
    assert body["model"] == "risk-judge" and body["response_format"] == {"type": "json_object"}
    context = json.loads(body["messages"][1]["content"])
    assert set(context) == {
        "symbol",
        "side",
        "quantity",
        "notional",
        "signal",
        "features",
        "regime",
        "limits_headroom",
        "account",
        "recent_fills",
    }
    assert KEY not in json.dumps(body)  # the key goes in the Authorization header only


def test_exits_and_rejections_never_ask(peer: ChatCompletionsPeer, rigs: list[Rig]) -> None:
    rig, _ = _rig(peer)
    rigs.append(rig)
    rejected = rig.decide(signal("BTCUSDT", p_up=0.3, t_ns=rig.clock.now))  # a SELL with no position: refused
    assert not rejected.approved and not rejected.HasField("moderator")
    assert peer.requests == []


def test_short_horizon_skips_by_rule(peer: ChatCompletionsPeer, rigs: list[Rig]) -> None:
    rig, _ = _rig(peer, horizon_unit_ns=1_000_000)  # horizons 1, 5, 30 ms: shorter than the budget
    rigs.append(rig)
    decision = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert decision.approved and decision.moderator.code == "moderator_skipped_short_horizon"
    assert decision.moderator.status == "skipped" and peer.requests == []


def test_verdict_schema() -> None:
    assert moderation.Verdict.model_validate_json('{"verdict":"reduce","size_factor":0.25,"reason":"r"}')
    for bad in (
        '{"verdict":"reduce","size_factor":1.0,"reason":"r"}',
        '{"verdict":"reduce","size_factor":0,"reason":"r"}',
        '{"verdict":"allow","reason":""}',
        '{"verdict":"allow","reason":"r","extra":1}',
        '{"verdict":"yes","reason":"r"}',
    ):
        with pytest.raises(ValidationError):
            moderation.Verdict.model_validate_json(bad)


def test_enabled_needs_an_endpoint_and_a_model() -> None:
    with pytest.raises(ValidationError):
        ModeratorSettings(enabled=True)
    assert not ModeratorSettings().enabled  # off by default
