"""Pure pieces behind the operator surfaces: human units, reason codes, the global --config, notification
texts and the daily summary, and one service's view of a shared metrics registry."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from quantumedge.cli import split_global
from quantumedge.notify.events import DAY_NS, DailySummary, from_control, from_report
from quantumedge.ops import units
from quantumedge.ops.commands import parse_assignment
from quantumedge.risk.domain.reasons import decision_codes, matches, primary_code, reason_code
from quantumedge.shared.errors import OperatorError
from quantumedge.shared.metrics_http import ServiceView
from quantumedge.v1 import control_pb2, execution_pb2, risk_pb2


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0"),
        (1_500_000, "1.5 ms"),
        (250_000_000, "250 ms"),
        (30e9, "30 s"),
        (300e9, "300 s"),
        (5400e9, "90 min"),
        (86_400e9, "24 h"),
        (2_500, "2.5 µs"),
    ],
)
def test_durations_read_in_ms_s_min_h(ns: float, text: str) -> None:
    assert units.duration(ns) == text


def test_money_and_quantities_to_the_venue_precision() -> None:
    assert units.money(9997.914652) == "9,997.91"
    assert units.money(-2.09, signed=True) == "-2.09" and units.money(3.5, signed=True) == "+3.50"
    assert units.quantity(0.008320000) == "0.00832" and units.quantity(1e-12) == "0"
    assert units.limit_value("order_window_ns", 60e9) == "60 s"
    assert units.limit_value("max_drawdown_fraction", 0.1) == "10.00 %"
    assert units.limit_value("max_open_positions", 2) == "2"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("max_spread_bps: BTCUSDT spread 3.10 bps > 2.00", "max_spread_bps"),
        ("halted: operator halt", "halted"),
        ("approved: entry BUY 0.1 BTCUSDT notional 500.00 sized by risk_fraction", "approved"),
        ("entry already pending for BTCUSDT: intent x; no pyramiding", "entry_pending"),
        ("already positioned: BUY 0.1, signal agrees; no pyramiding", "already_positioned"),
        ("Something Odd happened: x", "something_odd_happened"),
    ],
)
def test_reason_codes(reason: str, code: str) -> None:
    assert reason_code(reason) == code


def test_decision_filters() -> None:
    rejected = risk_pb2.RiskDecision(symbol="ETHUSDT", reasons=["min_confidence: x", "min_edge: y", "min_edge: z"])
    approved = risk_pb2.RiskDecision(symbol="BTCUSDT", approved=True, reasons=["approved: entry"])
    assert decision_codes(rejected) == ["min_confidence", "min_edge"] and primary_code(rejected) == "min_confidence"
    assert primary_code(approved) == "approved"
    assert matches(rejected, symbol="ethusdt", outcome="rejected", reason="min_edge")
    assert not matches(rejected, outcome="approved") and not matches(approved, reason="min_edge")


def test_config_may_come_before_any_command() -> None:
    assert split_global(["--config", "a.yaml", "train", "--data", "x"]) == ("a.yaml", ["train", "--data", "x"])
    assert split_global(["--config=b.yaml", "status"]) == ("b.yaml", ["status"])
    # After the command, --config belongs to the command (record and backtest have their own).
    assert split_global(["backtest", "--config", "c.yaml"]) == (None, ["backtest", "--config", "c.yaml"])


def test_limit_assignments_take_durations_and_refuse_unknown_names() -> None:
    assert parse_assignment("order_window_ns=60s") == ("order_window_ns", 60e9)
    assert parse_assignment("daily_loss_limit=400") == ("daily_loss_limit", 400.0)
    with pytest.raises(OperatorError) as exc:
        parse_assignment("daily_loss=400")
    assert exc.value.reason == "invalid_argument"


def test_notification_texts_from_halts_breaches_fills_and_rejections() -> None:
    auto = control_pb2.ControlEvent(
        actor={"subject": "risk"},
        reason="automatic",
        halt=control_pb2.HaltState(halted=True, limit="max_drawdown_fraction", value=0.12, threshold=0.1),
    )
    assert [n.kind for n in from_control(auto)] == ["halt", "limit_breach"]
    manual = control_pb2.ControlEvent(
        actor={"subject": "alice"}, halt=control_pb2.HaltState(halted=True, limit="operator")
    )
    assert [n.kind for n in from_control(manual)] == ["halt"] and "alice" in from_control(manual)[0].text
    resumed = control_pb2.ControlEvent(actor={"subject": "alice"}, halt=control_pb2.HaltState(halted=False))
    assert [n.kind for n in from_control(resumed)] == ["state"]
    order = execution_pb2.Order(client_order_id="o", symbol="BTCUSDT", side=1, quantity=0.001)
    fill = execution_pb2.ExecutionReport(order=order, fill=execution_pb2.Fill(price=60000.0, quantity=0.001))
    assert from_report(fill)[0].kind == "fill" and "60,000.00" in from_report(fill)[0].text
    order.status, order.reject_code = execution_pb2.ORDER_STATUS_REJECTED, "-2010"
    assert from_report(execution_pb2.ExecutionReport(order=order))[0].kind == "venue_reject"


def test_the_daily_summary_comes_once_the_utc_day_turns() -> None:
    summary = DailySummary()
    day = 20_000 * DAY_NS
    report = execution_pb2.ExecutionReport(
        order=execution_pb2.Order(symbol="BTCUSDT"), fill=execution_pb2.Fill(quantity=1.0), realized_pnl_delta=5.0
    )
    assert summary.add_report(report, day + 1) is None
    assert summary.add_report(report, day + 2) is None
    done = summary.add_report(report, day + DAY_NS + 1)
    assert done is not None and done.kind == "daily_summary" and "2 fills" in done.text and "+10.00" in done.text
    assert summary.fills == 1


def test_a_service_view_shows_only_its_own_samples() -> None:
    base = CollectorRegistry()
    counter = Counter("qe_bus_records", "x", ["group", "otel_scope_name"], registry=base)
    counter.labels("risk", "quantumedge.bus").inc()
    counter.labels("execution", "quantumedge.bus").inc()
    mine = Counter("qe_risk_decisions", "x", ["otel_scope_name"], registry=base)
    mine.labels("quantumedge.risk").inc()
    view = CollectorRegistry()
    view.register(ServiceView(base, "risk"))
    text = generate_latest(view).decode()
    assert 'group="risk"' in text and 'group="execution"' not in text and "qe_risk_decisions_total" in text
