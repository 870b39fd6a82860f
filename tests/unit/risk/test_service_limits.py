"""The service's side of an automatic halt, on the in-process bus over its real gRPC server: a limit driven
over its threshold by ExecutionReport messages is published as a halt on control.v1, shown by GetStatus,
audited as AutoHalt, and later signals are refused on risk.decisions.v1. Each limit's own behaviour is
tested on the pure engine in test_limits.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quantumedge.risk.domain.reasons import primary_code
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import execution_pb2
from tests.support.risk_builders import quiet_settings, report, signal, snapshot
from tests.support.risk_cases import HALTING_CASES
from tests.support.risk_rig import Rig


@pytest.fixture
def rig() -> Iterator[Rig]:
    case = HALTING_CASES[0]
    r = Rig(MemoryBus(), quiet_settings(**case.overrides))
    r.start()
    r.reports([snapshot(r.clock.now)])
    r.market(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    yield r
    r.close()


def test_a_halting_breach_is_published_on_control_shown_audited_and_refuses_signals(rig: Rig) -> None:
    case = HALTING_CASES[0]  # daily_loss_limit: halts by default
    before = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
    assert before.approved, before.reasons
    rejected = execution_pb2.ORDER_STATUS_REJECTED
    intent = before.intent
    rig.reports(
        [report("SOLUSDT", rig.clock.now, intent_id=intent.intent_id, status=rejected, quantity=intent.quantity)]
    )
    rig.reports(case.drive(rig.clock.now))

    halt = rig.watcher.wait_halt().halt
    assert halt.limit == case.limit
    assert halt.value == pytest.approx(case.value) and halt.threshold == pytest.approx(case.threshold)
    assert halt.cancel_open_orders

    status = rig.status()
    assert status.halted and status.account_state.reason_code == case.limit
    assert {s.name: s for s in status.limits}[case.limit].breached

    after = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
    assert not after.approved and primary_code(after) == "halted"
    audit = [a for a in rig.watcher.audits() if a.audit.method == "AutoHalt"]
    assert len(audit) == 1 and audit[0].actor.subject == "risk"
    code, limit = audit[0].audit.outcome.split(": ")[:2]  # "halted: <limit> breached: <detail>"
    assert code == "halted" and limit.split()[0] == case.limit
