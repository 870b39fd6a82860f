"""The RiskService gRPC API over a real gRPC server, on the in-process bus: halt, resume, limits, explain,
review, audits on control.v1, and state that survives a restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from quantumedge.risk.domain.reasons import decision_codes, primary_code, reason_code
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import common_pb2, control_pb2, dlq_pb2, risk_pb2
from tests.support.risk_builders import BUY, SELL, quiet_settings, report, round_trip, signal, snapshot
from tests.support.risk_rig import OPERATOR_SUBJECT, Rig
from tests.support.signing import signed
from tests.support.waiting import wait_for


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(bus: MemoryBus | None = None, **overrides: object) -> Rig:
        rig = Rig(bus or MemoryBus(), quiet_settings(**overrides))
        rig.start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig(rig_factory) -> Rig:
    rig = rig_factory()
    rig.reports([snapshot(rig.clock.now)])
    rig.market()
    return rig


def _code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_halt_publishes_the_halt_state_and_an_audit_then_resume_lifts_it(rig_factory) -> None:
    rig = rig_factory(min_hold_ns=0)  # a signal may close the position at once: the halt is under test
    rig.reports([snapshot(rig.clock.now)])
    rig.market()
    rig.reports([report("BTCUSDT", rig.clock.now, position_qty=0.01, intent_id="held", quantity=0.01)])
    answer = rig.stub.Halt(
        risk_pb2.HaltRequest(reason="exchange incident", cancel_open_orders=True, flatten=True), metadata=rig.operator
    )
    assert answer.halted
    event = rig.watcher.wait_halt()
    assert event.halt.halted and event.halt.cancel_open_orders and event.halt.flatten
    assert event.halt.limit == "operator" and event.reason == "exchange incident"
    assert event.actor.subject == OPERATOR_SUBJECT
    audit = next(a for a in rig.watcher.audits() if a.audit.method == "Halt")
    assert audit.actor.subject == OPERATOR_SUBJECT and audit.audit.outcome == "halted"
    assert '"reason": "exchange incident"' in audit.audit.request_json and audit.time_ns == rig.clock.now

    entry = rig.decide(signal("ETHUSDT", t_ns=rig.clock.now))
    assert not entry.approved and primary_code(entry) == "halted"  # the operator's reason is on the event above
    exit_ = rig.decide(signal("BTCUSDT", p_up=0.2, t_ns=rig.clock.now))
    assert exit_.approved and exit_.intent.kind == risk_pb2.INTENT_KIND_EXIT  # reducing risk stays possible

    code, _ = _code(lambda: rig.stub.Resume(risk_pb2.ResumeRequest(reason="no token")))
    assert code == grpc.StatusCode.UNAUTHENTICATED and rig.status().halted
    assert not rig.stub.Resume(risk_pb2.ResumeRequest(reason="incident over"), metadata=rig.operator).halted
    resumed = rig.watcher.wait_halt(lambda e: not e.halt.halted)
    assert resumed.actor.subject == OPERATOR_SUBJECT and resumed.halt.acknowledged_ns == rig.clock.now
    assert rig.decide(signal("ETHUSDT", t_ns=rig.clock.now)).approved


def test_resume_refused_while_a_halting_limit_holds(rig_factory) -> None:
    rig = rig_factory(daily_loss_limit=100.0)
    rig.reports([snapshot(rig.clock.now)])
    rig.reports(round_trip("BTCUSDT", rig.clock.now, pnl=-120.0))
    assert rig.watcher.wait_halt().halt.limit == "daily_loss_limit"
    code, details = _code(lambda: rig.stub.Resume(risk_pb2.ResumeRequest(reason="try"), metadata=rig.operator))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "daily_loss_limit" in details
    assert rig.status().halted
    refused = next(a for a in rig.watcher.audits() if a.audit.method == "Resume")
    assert refused.audit.outcome.startswith("refused: daily_loss_limit breached")


def test_update_limits_applies_the_mask_persists_and_audits(rig: Rig) -> None:
    answer = rig.stub.UpdateLimits(
        risk_pb2.UpdateLimitsRequest(
            limits=risk_pb2.RiskLimits(max_order_notional=250.0, daily_loss_limit=42.0),
            update_mask=["max_order_notional"],
            reason="smaller orders",
        ),
        metadata=rig.operator,
    )
    assert answer.limits.max_order_notional == 250.0
    assert answer.limits.daily_loss_limit == quiet_settings().limits.daily_loss_limit  # not in the mask
    assert rig.stub.GetLimits(risk_pb2.GetLimitsRequest()).limits == answer.limits
    stored = wait_for(lambda: rig.watcher.events("limits"), what="limits on control.v1")
    assert stored[-1].limits == answer.limits and stored[-1].actor.subject == OPERATOR_SUBJECT
    audit = next(a for a in rig.watcher.audits() if a.audit.method == "UpdateLimits")
    assert audit.audit.outcome == "updated: max_order_notional" and audit.reason == "smaller orders"
    # The new cap sizes the next entry.
    decision = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert decision.approved and decision.intent.quantity == 0.00499  # 250 at the ask 50 001, on the step


NONSENSE_LIMITS = [
    (risk_pb2.RiskLimits(max_order_notional=-1.0), ["max_order_notional"], "max_order_notional"),
    (risk_pb2.RiskLimits(risk_fraction=1.5), ["risk_fraction"], "risk_fraction"),
    (risk_pb2.RiskLimits(max_drawdown_fraction=3.0), ["max_drawdown_fraction"], "max_drawdown_fraction"),
    (risk_pb2.RiskLimits(), ["max_leverage"], "update_mask: unknown field 'max_leverage'"),
    (risk_pb2.RiskLimits(daily_loss_limit=5.0), [], "update_mask is required"),  # holes would read as 0
]


def test_update_limits_rejects_nonsense_naming_the_field(rig: Rig) -> None:
    # One rig for every case: each refusal leaves the limits as they were and is audited as invalid.
    before = rig.stub.GetLimits(risk_pb2.GetLimitsRequest()).limits
    for i, (limits, mask, field) in enumerate(NONSENSE_LIMITS):
        code, details = _code(
            lambda limits=limits, mask=mask: rig.stub.UpdateLimits(
                risk_pb2.UpdateLimitsRequest(limits=limits, update_mask=mask), metadata=rig.operator
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details
        assert rig.stub.GetLimits(risk_pb2.GetLimitsRequest()).limits == before
        audits = [a for a in rig.watcher.audits() if a.audit.method == "UpdateLimits"]
        assert len(audits) == i + 1, field
        assert audits[-1].audit.outcome.startswith("invalid:") and audits[-1].actor.subject == OPERATOR_SUBJECT
        assert rig.watcher.events("limits") == []


def test_update_limits_without_limits_is_invalid(rig: Rig) -> None:
    code, details = _code(lambda: rig.stub.UpdateLimits(risk_pb2.UpdateLimitsRequest(), metadata=rig.operator))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "limits is required" in details


def test_explain_decision(rig: Rig) -> None:
    # +0.5 bps expected is below min_expected_return_bps (2), and an untagged regime opens nothing.
    decision = rig.decide(
        signal("BTCUSDT", p_up=0.51, t_ns=rig.clock.now, regime=common_pb2.REGIME_UNSPECIFIED, expected_return_bps=0.5)
    )
    explained = rig.stub.ExplainDecision(risk_pb2.ExplainDecisionRequest(decision_id=decision.decision_id)).decision
    assert explained == decision and not explained.approved
    assert [r.split(":")[0] for r in explained.reasons] == ["min_expected_return", "regime"]
    code, _ = _code(lambda: rig.stub.ExplainDecision(risk_pb2.ExplainDecisionRequest(decision_id="nope")))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(lambda: rig.stub.ExplainDecision(risk_pb2.ExplainDecisionRequest()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_redelivered_signal_gets_the_same_decision_published_once(rig: Rig) -> None:
    sig = signal("BTCUSDT", t_ns=rig.clock.now)
    first = rig.decide(sig)
    rig.bus.publish(topics.SIGNALS, sig.symbol, sig)
    rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))  # handled after the redelivery: a barrier
    # The decision is already on the bus; a second copy would read to execution as a replay.
    assert rig.watcher.decisions_where(lambda d: d.signal_id == sig.signal_id) == [first] and first.approved
    explained = rig.stub.ExplainDecision(risk_pb2.ExplainDecisionRequest(decision_id=first.decision_id)).decision
    assert explained == first and first.signature.key_id  # same decision id, same intent id, signed
    assert rig.status().signals_seen == 2
    assert {r.key for r in rig.bus.read_all(topics.DECISIONS)} == {b"BTCUSDT"}  # keyed by symbol


def test_review_order(rig: Rig) -> None:
    intent = risk_pb2.OrderIntent(intent_id="manual-7", symbol="ETHUSDT", side=BUY, quantity=0.1)
    decision = rig.stub.ReviewOrder(risk_pb2.ReviewOrderRequest(intent=intent)).decision
    assert decision.approved and decision.intent.intent_id == "manual-7" and decision.intent.quantity == 0.1
    published = wait_for(lambda: rig.watcher.decisions_where(lambda d: d.intent.intent_id == "manual-7"))
    assert published[0] == decision
    too_big = risk_pb2.OrderIntent(intent_id="manual-8", symbol="ETHUSDT", side=BUY, quantity=10.0)
    refused = rig.stub.ReviewOrder(risk_pb2.ReviewOrderRequest(intent=too_big)).decision
    assert not refused.approved and "max_order_notional" in decision_codes(refused)
    code, details = _code(
        lambda: rig.stub.ReviewOrder(
            risk_pb2.ReviewOrderRequest(intent=risk_pb2.OrderIntent(intent_id="m", symbol="ETHUSDT", side=SELL))
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "intent.quantity" in details


def test_restarted_while_halted_stays_halted_with_its_limits_and_history(rig_factory) -> None:
    bus = MemoryBus()
    first = rig_factory(bus=bus, max_loss_streak=5)
    first.reports([snapshot(first.clock.now)])
    first.reports(
        round_trip("BTCUSDT", first.clock.now, pnl=-40.0) + round_trip("ETHUSDT", first.clock.now + 5, pnl=-2.0)
    )
    first.stub.UpdateLimits(
        risk_pb2.UpdateLimitsRequest(
            limits=risk_pb2.RiskLimits(max_order_notional=300.0), update_mask=["max_order_notional"]
        ),
        metadata=first.operator,
    )
    first.stub.Halt(risk_pb2.HaltRequest(reason="night"), metadata=first.operator)
    first.stop_service()

    second = Rig(bus, quiet_settings(max_loss_streak=5), clock=first.clock)
    second.start()
    try:
        status = second.status()
        assert status.halted and status.halt_reason == "night"
        assert status.equity == pytest.approx(9_958.0) and status.pnl_today == pytest.approx(-42.0)
        assert {s.name: s.value for s in status.limits}["max_loss_streak"] == 2
        assert second.stub.GetLimits(risk_pb2.GetLimitsRequest()).limits.max_order_notional == 300.0
        second.market()
        decision = second.decide(signal("BTCUSDT", t_ns=second.clock.now))
        assert not decision.approved and primary_code(decision) == "halted"
    finally:
        second.close()


def test_restarted_service_with_stale_data_approves_nothing(rig_factory) -> None:
    bus = MemoryBus()
    first = rig_factory(bus=bus)
    first.reports([snapshot(first.clock.now)])
    first.market()
    assert first.decide(signal("BTCUSDT", t_ns=first.clock.now)).approved
    first.stop_service()
    first.clock.advance(60)  # down for a minute: the market data it last saw is stale

    second = Rig(bus, quiet_settings(), clock=first.clock)
    second.start()
    try:
        decision = second.decide(signal("ETHUSDT", t_ns=second.clock.now))
        assert not decision.approved and decision_codes(decision) == ["stale_market_data"]
        assert second.status().last_market_data_ns == 0  # nothing from before the restart is trusted
        second.market()
        assert second.decide(signal("ETHUSDT", t_ns=second.clock.now)).approved
    finally:
        second.close()


def test_halt_from_the_control_topic_is_obeyed_and_bad_limits_are_dead_lettered(rig: Rig) -> None:
    # Signed records from another risk instance (same keyring): obeyed when valid.
    halt = control_pb2.ControlEvent(
        event_id="external-1",
        time_ns=rig.clock.now,
        reason="other instance",
        halt=control_pb2.HaltState(halted=True, since_ns=rig.clock.now),
    )
    rig.bus.publish(topics.CONTROL, "halt", signed(halt, topics.CONTROL, "halt"))
    wait_for(lambda: rig.status().halted, what="halt from control.v1")
    bad = control_pb2.ControlEvent(
        event_id="external-2", time_ns=rig.clock.now, limits=risk_pb2.RiskLimits(risk_fraction=9)
    )
    rig.bus.publish(topics.CONTROL, "limits", signed(bad, topics.CONTROL, "limits"))
    letters = wait_for(lambda: rig.bus.read_all(topics.DLQ), what="dead letter")
    letter = dlq_pb2.DeadLetter.FromString(letters[0].value)
    assert letter.source_topic == topics.CONTROL and "risk_fraction" in letter.reason
    assert rig.stub.GetLimits(risk_pb2.GetLimitsRequest()).limits.risk_fraction == quiet_settings().limits.risk_fraction


def test_list_decisions_newest_first_filtered_and_each_explainable(rig: Rig) -> None:
    approved = rig.decide(signal("BTCUSDT", p_up=0.9, t_ns=rig.clock.now))
    rejected = rig.decide(signal("ETHUSDT", p_up=0.5, t_ns=rig.clock.now))
    assert approved.approved and not rejected.approved
    listed = rig.stub.ListDecisions(risk_pb2.ListDecisionsRequest(), timeout=5).decisions
    assert [d.decision_id for d in listed[:2]] == [rejected.decision_id, approved.decision_id]
    only = rig.stub.ListDecisions(risk_pb2.ListDecisionsRequest(outcome="approved", symbol="btcusdt"), timeout=5)
    assert [d.decision_id for d in only.decisions] == [approved.decision_id]
    code = reason_code(rejected.reasons[0])
    by_reason = rig.stub.ListDecisions(risk_pb2.ListDecisionsRequest(reason=code, limit=1), timeout=5).decisions
    assert [d.decision_id for d in by_reason] == [rejected.decision_id]
    explained = rig.stub.ExplainDecision(risk_pb2.ExplainDecisionRequest(decision_id=by_reason[0].decision_id))
    assert explained.decision.reasons == rejected.reasons
    status, _ = _code(lambda: rig.stub.ListDecisions(risk_pb2.ListDecisionsRequest(outcome="maybe"), timeout=5))
    assert status == grpc.StatusCode.INVALID_ARGUMENT


def test_the_equity_curve_is_sampled_from_what_risk_learns(rig: Rig) -> None:
    rig.clock.now += 2_000_000_000
    rig.market()
    points = rig.stub.GetEquityCurve(risk_pb2.GetEquityCurveRequest(), timeout=5).points
    assert len(points) >= 2 and all(p.equity > 0 for p in points)
    assert [p.time_ns for p in points] == sorted(p.time_ns for p in points)
    assert len(rig.stub.GetEquityCurve(risk_pb2.GetEquityCurveRequest(max_points=1), timeout=5).points) == 1
