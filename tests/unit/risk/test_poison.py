"""Poisoned values on every topic risk consumes, and into its changing RPCs: each is dead-lettered (or refused
with INVALID_ARGUMENT) with its reason code, equity stays finite, and risk goes on deciding (issue 15)."""

from __future__ import annotations

import math
from collections.abc import Callable

import grpc
import pytest

from quantumedge.shared import bounds, topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import dlq_pb2, risk_pb2
from tests.support.risk_builders import book, quiet_settings, report, signal, snapshot
from tests.support.risk_rig import Rig
from tests.support.waiting import wait_for

POISON = [math.nan, math.inf, -math.inf, 1e300, -5.0, float(2**63 - 1)]
CODES = {bounds.NON_FINITE, bounds.OUT_OF_RANGE, bounds.NOT_POSITIVE, bounds.PRICE_JUMP}


def dead_letters(bus: MemoryBus, topic: str) -> list[dlq_pb2.DeadLetter]:
    letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
    return [d for d in letters if d.source_topic == topic]


@pytest.fixture
def rig() -> Rig:
    r = Rig(MemoryBus(), quiet_settings())
    r.start()
    yield r
    r.close()


def _poisoned_and_still_deciding(rig: Rig, topic: str, publish: Callable[[float], None]) -> None:
    for value in POISON:
        publish(value)
    rig.bus.flush()
    wait_for(lambda: len(dead_letters(rig.bus, topic)) >= len(POISON) or None, what="dead letters")
    letters = dead_letters(rig.bus, topic)
    assert {d.reason_code for d in letters} <= CODES and len(letters) == len(POISON)
    status = rig.status()
    assert math.isfinite(status.equity) and math.isfinite(status.drawdown) and not status.halted
    rig.market()
    assert rig.decide(signal("ETHUSDT", t_ns=rig.clock.now, mid=3000.0)).approved


def test_market_events_with_poisoned_prices_are_dead_lettered(rig: Rig) -> None:
    rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
    rig.market()
    rig.reports([report("BTCUSDT", rig.clock.now, position_qty=0.01, intent_id="held", quantity=0.01)])

    def publish(value: float) -> None:
        rig.bus.publish(topics.BOOK, "BTCUSDT", book("BTCUSDT", 49_999.0, value, rig.clock.now))

    _poisoned_and_still_deciding(rig, topics.BOOK, publish)
    # A price 1000x the last good one is finite and in range, and still refused.
    rig.bus.publish(topics.BOOK, "BTCUSDT", book("BTCUSDT", 49_999.0, 50_000_000.0, rig.clock.now))
    rig.bus.flush()
    wait_for(lambda: any(d.reason_code == bounds.PRICE_JUMP for d in dead_letters(rig.bus, topics.BOOK)) or None)
    assert not rig.status().halted


def test_reports_with_poisoned_pnl_and_equity_are_dead_lettered_and_skipped_on_rebuild(rig: Rig) -> None:
    rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
    fields = ["realized_pnl_delta", "equity", "fee_delta"]

    def publish(value: float) -> None:
        r = report("BTCUSDT", rig.clock.now)
        setattr(r, fields[POISON.index(value) % 3], value)
        rig.bus.publish(topics.REPORTS, "BTCUSDT", r)

    _poisoned_and_still_deciding(rig, topics.REPORTS, publish)
    before = rig.status().equity
    rig.stop_service()
    rig.start()  # from the checkpoint: it covers the poisoned reports, which were never applied
    assert rig.status().equity == before and rig.service.rebuild_skipped == {}
    rig.stop_service()
    rig.set_risk(checkpoint_every_reports=0)
    rig.start()  # risk replays the whole reports topic: the poisoned ones are skipped, and said so
    assert rig.status().equity == before and math.isfinite(before)
    assert sum(rig.service.rebuild_skipped.values()) == len(POISON)


def test_signals_with_poisoned_values_are_dead_lettered(rig: Rig) -> None:
    rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
    rig.market()

    def publish(value: float) -> None:
        s = signal("BTCUSDT", t_ns=rig.clock.now)
        s.confidence = value
        rig.bus.publish(topics.SIGNALS, "BTCUSDT", s)

    _poisoned_and_still_deciding(rig, topics.SIGNALS, publish)


def test_report_with_a_time_of_2_63_minus_1_is_dead_lettered(rig: Rig) -> None:
    r = report("BTCUSDT", 2**63 - 1)
    rig.bus.publish(topics.REPORTS, "BTCUSDT", r)
    rig.bus.flush()
    letters = wait_for(lambda: dead_letters(rig.bus, topics.REPORTS) or None)
    assert letters[0].reason_code == bounds.BAD_TIME


def test_changing_rpcs_refuse_poisoned_inputs(rig: Rig) -> None:
    # One rig for every poisoned value: a refused call changes nothing the next one would see.
    for value in POISON:
        intent = risk_pb2.OrderIntent(intent_id="m1", symbol="BTCUSDT", side=1, order_type=1, quantity=value)
        limits = risk_pb2.UpdateLimitsRequest(
            limits=risk_pb2.RiskLimits(max_order_notional=value), update_mask=["max_order_notional"]
        )
        for call, request in (
            (rig.stub.ReviewOrder, risk_pb2.ReviewOrderRequest(intent=intent)),
            (rig.stub.UpdateLimits, limits),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call(request, metadata=rig.operator)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, value
        assert rig.stub.GetLimits(risk_pb2.GetLimitsRequest()).limits.max_order_notional > 0


def test_halt_with_a_1_mb_reason_is_refused_and_nothing_changes(rig: Rig) -> None:
    for call in (rig.stub.Halt, rig.stub.Resume):
        request = (risk_pb2.HaltRequest if call is rig.stub.Halt else risk_pb2.ResumeRequest)(reason="x" * 1_000_000)
        with pytest.raises(grpc.RpcError) as err:
            call(request, metadata=rig.operator)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bounds.TOO_LONG in err.value.details()
    assert not rig.status().halted and not rig.watcher.halts()


class _ControlWriteFails(MemoryBus):
    """The in-process bus whose control.v1 writes fail, as a broker refusing the record would."""

    fail = False

    def publish(self, topic, key, message, headers=None):  # type: ignore[override]
        if self.fail and topic == topics.CONTROL:
            raise RuntimeError("MessageSizeTooLargeError")
        return super().publish(topic, key, message, headers)


def test_a_halt_that_cannot_be_written_fails_and_changes_nothing() -> None:
    bus = _ControlWriteFails()
    rig = Rig(bus, quiet_settings())
    rig.start()
    try:
        rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
        bus.fail = True
        with pytest.raises(grpc.RpcError) as err:
            rig.stub.Halt(risk_pb2.HaltRequest(reason="incident"), metadata=rig.operator)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not rig.status().halted and not rig.watcher.halts()
        rig.market()
        assert rig.decide(signal("ETHUSDT", t_ns=rig.clock.now, mid=3000.0)).approved
        bus.fail = False
        assert rig.stub.Halt(risk_pb2.HaltRequest(reason="incident"), metadata=rig.operator).halted
        assert rig.watcher.wait_halt().reason == "incident"
    finally:
        rig.close()


def test_a_resume_that_cannot_be_written_fails_and_risk_stays_halted() -> None:
    bus = _ControlWriteFails()
    rig = Rig(bus, quiet_settings())
    rig.start()
    try:
        rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
        assert rig.stub.Halt(risk_pb2.HaltRequest(reason="incident"), metadata=rig.operator).halted
        rig.watcher.wait_halt()
        streak = rig.service.engine.ledger.loss_streak = 3  # as if halted after a losing run
        bus.fail = True
        with pytest.raises(grpc.RpcError) as err:
            rig.stub.Resume(risk_pb2.ResumeRequest(reason="checked"), metadata=rig.operator)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        # Still halted, the streak not acknowledged: nothing the operator cannot see on control.v1 happened.
        assert rig.status().halted and rig.service.engine.ledger.loss_streak == streak
        rig.market()
        assert not rig.decide(signal("ETHUSDT", t_ns=rig.clock.now, mid=3000.0)).approved
        bus.fail = False
        assert not rig.stub.Resume(risk_pb2.ResumeRequest(reason="checked"), metadata=rig.operator).halted
        assert not rig.status().halted and rig.service.engine.ledger.loss_streak == 0
    finally:
        rig.close()


def test_commission_dust_is_no_position_and_trading_goes_on(rig: Rig) -> None:
    """Buys whose commission Binance takes in the base asset leave a remainder below the lot and notional
    minimum: risk neither refuses the next entry as already positioned nor approves an exit of the dust."""
    rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
    rig.market()
    bought, fee = 0.01, 0.01 * 0.001  # 0.1% commission in BTC
    rig.reports([report("BTCUSDT", rig.clock.now, position_qty=bought - fee, intent_id="e1", quantity=bought)])
    sold = round(bought - fee, 5) - 0.00001  # the lot filter floors the exit; what stays is dust
    rig.reports(
        [
            report(
                "BTCUSDT",
                rig.clock.now + 1,
                position_qty=bought - fee - sold,
                intent_id="x1",
                quantity=sold,
                role=2,
                side=2,
            )
        ]
    )
    held = bought - fee - sold
    assert 0 < held * 50_000.0 < 5.0  # below BTCUSDT's 5 USDT minimum notional: dust
    assert rig.service.engine.ledger.dust("BTCUSDT") == pytest.approx(held)
    rig.clock.advance(1)
    rig.market()
    again = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert again.approved and again.intent.kind == risk_pb2.INTENT_KIND_ENTRY
    exit_ = rig.decide(signal("ETHUSDT", p_up=0.2, t_ns=rig.clock.now, mid=3000.0))
    assert not exit_.approved or exit_.intent.kind != risk_pb2.INTENT_KIND_EXIT
