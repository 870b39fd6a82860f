"""Trading states ACTIVE / REDUCING / HALTED: the domain (refuses entries, passes exits), risk's RPCs over a
real gRPC server with the operator-auth interceptor, the signed state:<scope> records on control.v1, and the
state surviving a restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.risk.domain.reasons import reason_code
from quantumedge.risk.domain.trading_state import ACCOUNT, MODEL_DRIFT, OPERATOR, TradingState
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.keyring import keyring_for
from quantumedge.v1 import risk_pb2
from tests.support.risk_builders import BUY, SELL, FakeClock, quiet_settings, signal, snapshot
from tests.support.risk_rig import OPERATOR_SUBJECT, Rig
from tests.unit.risk.test_engine import hold, past_min_hold, ready_engine

REDUCING, ACTIVE, HALTED = risk_pb2.TRADING_STATE_REDUCING, risk_pb2.TRADING_STATE_ACTIVE, risk_pb2.TRADING_STATE_HALTED


def _intent(symbol: str, side: int, qty: float, intent_id: str) -> risk_pb2.OrderIntent:
    return risk_pb2.OrderIntent(intent_id=intent_id, symbol=symbol, side=side, quantity=qty)


# -- domain ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", ["BTCUSDT", ACCOUNT])
def test_reducing_refuses_entries_and_lets_exits_through(scope: str) -> None:
    clock = FakeClock()
    engine = ready_engine(clock, min_hold_ns=0)
    hold(engine, clock, "BTCUSDT", 0.01)
    past_min_hold(engine, clock)
    engine.trading.reduce(scope, OPERATOR, "alice: drain", clock.now)

    # An entry on the reduced symbol (a SELL entry needs no position; a BUY adds to the held one).
    entry = engine.review(_intent("BTCUSDT", BUY, 0.001, "manual-entry"), clock.now)
    assert not entry.approved and reason_code(entry.reasons[0]) == "exits_only"
    other = engine.decide(signal("ETHUSDT", t_ns=clock.now), clock.now)
    assert other.approved is (scope != ACCOUNT)  # the account's REDUCING covers every symbol
    if scope == ACCOUNT:
        assert reason_code(other.reasons[0]) == "exits_only"

    exit_ = engine.decide(signal("BTCUSDT", p_up=0.2, t_ns=clock.now), clock.now)
    assert exit_.approved and exit_.intent.kind == risk_pb2.INTENT_KIND_EXIT
    assert exit_.intent.side == SELL and exit_.intent.quantity == pytest.approx(0.01)


def test_a_manual_exit_is_approved_while_reducing_and_activate_lifts_every_cause() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    hold(engine, clock, "BTCUSDT", 0.02)
    engine.trading.reduce("BTCUSDT", OPERATOR, "drain", clock.now)
    engine.trading.reduce("BTCUSDT", MODEL_DRIFT, "psi", clock.now + 1)
    manual_exit = engine.review(_intent("BTCUSDT", SELL, 0.02, "flatten-1"), clock.now)
    assert manual_exit.approved and manual_exit.intent.kind == risk_pb2.INTENT_KIND_EXIT
    st = engine.trading.scope("BTCUSDT")
    assert st.state is TradingState.REDUCING and st.reason_code == OPERATOR  # the oldest cause reads first
    engine.trading.lift("BTCUSDT", MODEL_DRIFT, clock.now)  # a clean signal never undoes the operator's cause
    assert engine.trading.scope("BTCUSDT").state is TradingState.REDUCING
    assert engine.trading.activate("BTCUSDT", clock.now) == [OPERATOR]
    assert engine.trading.scope("BTCUSDT").state is TradingState.ACTIVE


def test_a_drift_alarm_enters_reducing_by_itself_and_a_clean_signal_leaves_it() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    drifted = signal("BTCUSDT", t_ns=clock.now)
    drifted.drift, drifted.drift_reason = True, "psi 0.4 on spread_bps"
    decision = engine.decide(drifted, clock.now)
    assert not decision.approved and reason_code(decision.reasons[0]) == "exits_only"
    st = engine.trading.scope("BTCUSDT")
    assert st.state is TradingState.REDUCING and st.reason_code == MODEL_DRIFT
    assert engine.trading.changed() == ["BTCUSDT"]  # to publish on control.v1
    assert engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now).approved
    assert engine.trading.scope("BTCUSDT").state is TradingState.ACTIVE


def test_status_shows_the_account_state_halted_over_reducing() -> None:
    clock = FakeClock()
    engine = RiskEngine(quiet_settings())
    engine.trading.reduce(ACCOUNT, OPERATOR, "upgrade", clock.now)
    assert engine.status(clock.now, []).account_state.state == REDUCING
    engine.halt_now("incident", False, False, clock.now)
    account = engine.status(clock.now, []).account_state
    assert account.state == HALTED and account.reason_code == "operator" and account.detail == "incident"


# -- the service: RPCs, records on control.v1, restart -----------------------------------------------
@pytest.fixture
def rigs() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(bus: MemoryBus, clock: FakeClock | None = None) -> Rig:
        rig = Rig(bus, quiet_settings(), clock=clock)
        rig.start()
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_reduce_needs_the_token_checks_its_input_publishes_a_signed_record_and_survives_a_restart(rigs) -> None:
    bus = MemoryBus()
    rig = rigs(bus)
    rig.reports([snapshot(rig.clock.now)])
    rig.market()
    stub = rig.stub
    assert _code(lambda: stub.Reduce(risk_pb2.ReduceRequest(symbol="BTCUSDT"))) == grpc.StatusCode.UNAUTHENTICATED
    for bad in (risk_pb2.ReduceRequest(symbol="btc/usdt"), risk_pb2.ReduceRequest(symbol="X" * 33)):
        assert _code(lambda b=bad: stub.Reduce(b, metadata=rig.operator)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        _code(lambda: stub.Activate(risk_pb2.ActivateRequest(reason="r" * 600), metadata=rig.operator))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert rig.watcher.events("state:BTCUSDT") == []  # nothing changed by a refused call

    answer = stub.Reduce(risk_pb2.ReduceRequest(symbol="BTCUSDT", reason="drain"), metadata=rig.operator)
    assert answer.state.state == REDUCING and answer.state.reason_code == OPERATOR
    record = rig.watcher.events("state:BTCUSDT")[-1]
    assert record.trading_state.state == REDUCING and record.actor.subject == OPERATOR_SUBJECT
    assert keyring_for(rig.settings, "test").verify(record, topics.CONTROL, "state:BTCUSDT").ok
    outcomes = [a.audit.outcome for a in rig.watcher.audits() if a.audit.method == "Reduce" and a.audit.allowed]
    assert outcomes[-1] == "reducing" and [o.split(":")[0] for o in outcomes[:-1]] == ["invalid", "invalid"]
    refused = rig.decide(signal("BTCUSDT", t_ns=rig.clock.now))
    assert not refused.approved and reason_code(refused.reasons[0]) == "exits_only"
    assert rig.decide(signal("ETHUSDT", t_ns=rig.clock.now)).approved  # only BTCUSDT is reducing
    rig.stop_service()

    again = rigs(bus, clock=rig.clock)  # rebuilt from control.v1
    states = {s.symbol: s for s in again.status().symbol_states}
    assert states["BTCUSDT"].state == REDUCING and states["BTCUSDT"].reason_code == OPERATOR
    again.market()
    assert not again.decide(signal("BTCUSDT", t_ns=again.clock.now)).approved
    back = again.stub.Activate(risk_pb2.ActivateRequest(symbol="BTCUSDT", reason="done"), metadata=again.operator)
    assert back.state.state == ACTIVE
    assert again.watcher.events("state:BTCUSDT")[-1].trading_state.state == ACTIVE
    assert again.decide(signal("BTCUSDT", t_ns=again.clock.now)).approved


def test_account_reduce_shows_in_status_and_a_drift_alarm_is_published_by_itself(rigs) -> None:
    rig = rigs(MemoryBus())
    rig.reports([snapshot(rig.clock.now)])
    rig.market()
    rig.stub.Reduce(risk_pb2.ReduceRequest(reason="pre-upgrade"), metadata=rig.operator)
    status = rig.status()
    assert status.account_state.state == REDUCING and status.account_state.reason_code == OPERATOR
    assert rig.watcher.events("state:account")[-1].trading_state.state == REDUCING
    rig.stub.Activate(risk_pb2.ActivateRequest(), metadata=rig.operator)
    assert rig.status().account_state.state == ACTIVE

    drifted = signal("ETHUSDT", t_ns=rig.clock.now)
    drifted.drift, drifted.drift_reason = True, "features out of range"
    assert not rig.decide(drifted).approved
    record = rig.watcher.events("state:ETHUSDT")[-1]
    assert record.trading_state.reason_code == MODEL_DRIFT and record.actor.source == "automatic"
    assert any(a.audit.method == "AutoState" for a in rig.watcher.audits())


def test_the_cli_reduce_and_activate_and_the_console_buttons_reach_risk(rigs, monkeypatch, capsys) -> None:
    import argparse

    from quantumedge.console.server import ACTIONS
    from quantumedge.ops import commands
    from quantumedge.ops.client import TOKEN_ENV, Services
    from quantumedge.settings import Settings

    rig = rigs(MemoryBus())
    settings = Settings(symbols=["BTCUSDT"])
    settings.console.addresses = {"risk": f"127.0.0.1:{rig.server.port}"}
    monkeypatch.setenv(TOKEN_ENV, rig.operator[0][1].removeprefix("Bearer "))
    assert commands.run("reduce", argparse.Namespace(symbol="btcusdt", reason="drain"), settings) == 0
    assert "BTCUSDT REDUCING: drain" in capsys.readouterr().out
    assert {s.symbol: s.state for s in rig.status().symbol_states}["BTCUSDT"] == REDUCING
    assert commands.run("activate", argparse.Namespace(symbol="BTCUSDT", reason="done"), settings) == 0
    assert "BTCUSDT ACTIVE: done" in capsys.readouterr().out

    with Services(settings) as services:
        token = rig.operator[0][1].removeprefix("Bearer ")
        assert ACTIONS["reduce"].call(services, token, {"reason": "pre-upgrade"}) == "account REDUCING"
        assert rig.status().account_state.state == REDUCING
        assert ACTIONS["activate"].call(services, token, {"reason": "upgraded"}) == "account ACTIVE"
    assert rig.status().account_state.state == ACTIVE
    audited = [
        (a.audit.method, a.actor.subject) for a in rig.watcher.audits() if a.audit.method in ("Reduce", "Activate")
    ]
    assert audited == [("Reduce", OPERATOR_SUBJECT), ("Activate", OPERATOR_SUBJECT)] * 2
