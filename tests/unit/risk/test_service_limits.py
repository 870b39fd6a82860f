"""One test per limit, driven over its threshold by real ExecutionReport messages (or market events for the
market guards) published on the in-process bus; the running service refuses new intents on
risk.decisions.v1 and, for halting limits, publishes the halt on control.v1 saying which limit and by how much."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import execution_pb2
from tests.support.risk_builders import NS, depth, quiet_settings, report, round_trip, signal, snapshot
from tests.support.risk_cases import HALTING_CASES, Case, two_positions
from tests.support.risk_rig import Rig
from tests.support.waiting import wait_for


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(**overrides: object) -> Rig:
        rig = Rig(MemoryBus(), quiet_settings(**overrides))
        rig.start()
        rig.reports([snapshot(rig.clock.now)])
        rig.market(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.mark.parametrize("case", HALTING_CASES, ids=lambda c: c.limit)
def test_limit_breached_by_execution_reports_refuses_intents_and_halts(rig_factory, case: Case) -> None:
    # Every state limit can be made a halting one; the first three halt by default.
    rig = rig_factory(halt_on=[case.limit], **case.overrides)
    before = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
    assert before.approved, before.reasons
    # The venue refuses that order, so nothing of it stays pending.
    rig.reports(
        [
            report(
                "SOLUSDT",
                rig.clock.now,
                intent_id=before.intent.intent_id,
                status=execution_pb2.ORDER_STATUS_REJECTED,
                quantity=before.intent.quantity,
            )
        ]
    )
    rig.reports(case.drive(rig.clock.now))

    halt = rig.watcher.wait_halt().halt
    assert halt.limit == case.limit
    assert halt.value == pytest.approx(case.value) and halt.threshold == pytest.approx(case.threshold)
    assert halt.cancel_open_orders  # automatic halts cancel resting entries by default

    status = rig.status()
    assert status.halted and case.limit in status.halt_reason
    assert {s.name: s for s in status.limits}[case.limit].breached

    after = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
    assert not after.approved
    assert any(r.startswith("halted: automatic: " + case.limit) for r in after.reasons)
    audit = [a for a in rig.watcher.audits() if a.audit.method == "AutoHalt"]
    assert audit and case.limit in audit[0].audit.outcome and audit[0].actor.subject == "risk"


@pytest.mark.parametrize("limit", ["daily_loss_limit", "max_drawdown_fraction", "max_loss_streak"])
def test_hard_limits_halt_by_default(rig_factory, limit: str) -> None:
    case = next(c for c in HALTING_CASES if c.limit == limit)
    rig = rig_factory(**case.overrides)
    rig.reports(case.drive(rig.clock.now))
    assert rig.watcher.wait_halt().halt.limit == limit


def test_soft_limit_refuses_entries_without_halting(rig_factory) -> None:
    rig = rig_factory(max_gross_exposure=600.0)
    rig.reports(two_positions(rig.clock.now))
    decision = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
    assert not decision.approved
    assert any(r.startswith("max_gross_exposure breached: gross exposure 650.00 >= 600.00") for r in decision.reasons)
    assert not rig.status().halted and rig.watcher.halts() == []


def test_max_symbol_notional_caps_then_refuses(rig_factory) -> None:
    rig = rig_factory(max_symbol_notional=520.0, allow_pyramiding=True)
    rig.reports([report("BTCUSDT", rig.clock.now, position_qty=0.01, avg_price=50_000.0, intent_id="e", quantity=0.01)])
    capped = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert capped.approved and capped.intent.quantity == 0.00039  # only 20 of room left, bought at the ask
    assert "sized by max_symbol_notional" in capped.reasons[0]
    rig.reports(
        [
            report(
                "BTCUSDT",
                rig.clock.now,
                position_qty=0.0105,
                avg_price=50_000.0,
                intent_id=capped.intent.intent_id,
                quantity=0.0004,
            )
        ]
    )
    refused = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert not refused.approved and refused.reasons[0].startswith("max_symbol_notional:")


def test_open_positions_limit_refuses_a_new_symbol(rig_factory) -> None:
    rig = rig_factory(max_open_positions=1)
    rig.reports([report("ETHUSDT", rig.clock.now, position_qty=0.05, avg_price=3_000.0, intent_id="e", quantity=0.05)])
    decision = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert not decision.approved and "max_open_positions: 1 open >= 1" in decision.reasons


def test_cooldown_after_loss_is_per_symbol_and_expires(rig_factory) -> None:
    rig = rig_factory(cooldown_after_loss_ns=30 * NS)
    rig.reports(round_trip("BTCUSDT", rig.clock.now, pnl=-5.0))
    refused = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert not refused.approved and refused.reasons[0].startswith("cooldown_after_loss: BTCUSDT lost")
    assert rig.decide(signal("ETHUSDT", t_ns=rig.clock.now)).approved
    rig.clock.advance(31)
    rig.market(["BTCUSDT"])
    assert rig.decide(signal("BTCUSDT", t_ns=rig.clock.now)).approved


def test_cooldown_after_exit(rig_factory) -> None:
    rig = rig_factory(cooldown_after_exit_ns=10 * NS)
    rig.reports(round_trip("BTCUSDT", rig.clock.now, pnl=+5.0))
    refused = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert not refused.approved and refused.reasons[0].startswith("cooldown_after_exit: BTCUSDT exited")


def test_stale_market_data_guard(rig_factory) -> None:
    rig = rig_factory()
    rig.reports([report("BTCUSDT", rig.clock.now, position_qty=0.01, intent_id="h", quantity=0.01)])
    rig.clock.advance(6)
    for s in (signal("ETHUSDT", t_ns=rig.clock.now), signal("BTCUSDT", p_up=0.1, t_ns=rig.clock.now)):
        decision = rig.decide(s)  # neither the entry nor the exit
        assert not decision.approved and decision.reasons[0].startswith("stale_market_data:")


def test_spread_guard(rig_factory) -> None:
    rig = rig_factory(max_spread_bps=10.0)
    rig.market(["BTCUSDT"], spread_bps=25.0)
    decision = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert not decision.approved and decision.reasons[0].startswith("max_spread_bps: BTCUSDT spread 25.00 bps > 10.00")


def test_depth_guard(rig_factory) -> None:
    rig = rig_factory(min_depth_notional=10_000.0)
    no_depth = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert "min_depth_notional: no fresh depth for BTCUSDT" in no_depth.reasons

    def reasons_until(predicate: Callable[[list[str]], bool]) -> list[str]:
        # Depth has no sequence number in GetStatus: ask with fresh signals until risk has folded it in.
        return wait_for(
            lambda: next(
                iter(
                    [
                        d.reasons[:]
                        for d in [rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))]
                        if predicate(d.reasons[:])
                    ]
                ),
                None,
            ),
            what="depth seen by risk",
        )

    rig.market_event(depth("BTCUSDT", 50_000.0, 0.01, rig.clock.now))  # 5 levels x 500 = 2 500 per side
    thin = reasons_until(lambda rs: any(r.startswith("min_depth_notional: BTCUSDT depth") for r in rs))
    assert any(r.startswith("min_depth_notional: BTCUSDT depth 2500.75 within 50 bps < 10000.00") for r in thin)
    rig.market_event(depth("BTCUSDT", 50_000.0, 1.0, rig.clock.now))
    assert reasons_until(lambda rs: rs[0].startswith("approved:"))
