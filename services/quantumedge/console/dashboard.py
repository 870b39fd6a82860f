"""The console's main page, read live through the services' gRPC APIs (each section on its own, so one
service that does not answer blanks only its part)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quantumedge.console import pages
from quantumedge.console.pages import e
from quantumedge.ops import units
from quantumedge.ops.client import Services
from quantumedge.ops.commands import decision_row, explain_lines, state_name
from quantumedge.shared.config import SERVICE_NAMES
from quantumedge.shared.errors import OperatorError
from quantumedge.v1 import execution_pb2, risk_pb2


def _section(title: str, section_id: str, build: Callable[[], str]) -> str:
    try:
        inner = build()
    except OperatorError as exc:
        inner = f"<p class='flash'>{e(exc.reason)}: {e(exc.message)}</p>"
    return f'<section id="{e(section_id)}"><h2>{e(title)}</h2>{inner}</section>'


def _health(s: Services) -> str:
    rows = []
    for name in SERVICE_NAMES:
        rows.append((name, s.health(name), s.addresses[name]))
    return pages.table(("service", "health", "address"), rows, "health")


def _state(s: Services) -> str:
    risk = s.risk_status()
    execution = s.execution_status()
    account = risk.account_state
    state = "HALTED" if risk.halted else state_name(account.state) if account.state else "ACTIVE"
    css = state.lower()
    why = risk.halt_reason if risk.halted else f"{account.reason_code}: {account.detail}" if account.reason_code else ""
    reason = f" ({e(why)})" if why else ""
    symbols = {st.symbol: st for st in risk.symbol_states}

    def symbol_state(sym: str) -> str:
        st = symbols.get(sym)
        if state != "ACTIVE" or st is None or st.state != risk_pb2.TRADING_STATE_REDUCING:
            return state  # the account's HALTED / REDUCING covers every symbol
        return f"REDUCING ({st.reason_code})"

    per_symbol = pages.table(
        ("symbol", "state", "exposure"),
        [(sym, symbol_state(sym), units.money(risk.symbol_exposure.get(sym, 0.0))) for sym in s.settings.symbols],
        "symbol-states",
    )
    figures = pages.table(
        ("equity", "PnL today", "drawdown", "gross exposure", "approved", "rejected", "venue", "fills"),
        [
            (
                units.money(risk.equity),
                units.money(risk.pnl_today, signed=True),
                units.fraction(risk.drawdown),
                units.money(risk.gross_exposure),
                risk.approved,
                risk.rejected,
                execution.venue,
                execution.fills,
            )
        ],
        "figures",
    )
    return f'<p>Account: <span id="trading-state" class="{css}">{state}</span>{reason}</p>{per_symbol}{figures}'


def _positions(s: Services) -> str:
    rows = [
        (
            p.symbol,
            units.quantity(p.quantity),
            units.money(p.average_price),
            units.money(p.mark_price),
            units.money(p.unrealized_pnl, signed=True),
            units.money(p.realized_pnl, signed=True),
        )
        for p in s.positions()
    ]
    positions = pages.table(("symbol", "quantity", "avg price", "mark", "unrealised", "realised"), rows, "positions")
    orders = [
        (
            o.client_order_id,
            o.symbol,
            "BUY" if o.side == 1 else "SELL",
            execution_pb2.OrderRole.Name(o.role).removeprefix("ORDER_ROLE_"),
            units.quantity(o.quantity),
            units.money(o.price or o.stop_price),
            execution_pb2.OrderStatus.Name(o.status).removeprefix("ORDER_STATUS_"),
        )
        for o in s.orders(open_only=True)
    ]
    open_orders = pages.table(("order", "symbol", "side", "role", "qty", "price", "status"), orders, "open-orders")
    return f"{positions}<h3>Open orders</h3>{open_orders}"


def _fills(s: Services) -> str:
    filled = sorted((o for o in s.orders() if o.filled_quantity > 0), key=lambda o: o.updated_time_ns, reverse=True)
    rows = [
        (
            o.symbol,
            "BUY" if o.side == 1 else "SELL",
            units.quantity(o.filled_quantity),
            units.money(o.average_price),
            units.money(o.fees),
            execution_pb2.OrderRole.Name(o.role).removeprefix("ORDER_ROLE_"),
        )
        for o in filled[:30]
    ]
    return pages.table(("symbol", "side", "filled", "avg price", "fees", "role"), rows, "fills")


def _decisions(s: Services, shown: int) -> str:
    rows = []
    for d in s.decisions(limit=shown):
        row = decision_row(d)
        link = f'<a href="/decision/{e(d.decision_id)}" class="explain">explain</a>'
        rows.append((e(row["time"]), e(row["symbol"]), e(row["outcome"]), e(row["codes"]), e(row["reason"]), link))
    return pages.table(("time", "symbol", "outcome", "codes", "reason", ""), rows, "decisions", raw=True)


def _models(s: Services) -> str:
    status = s.inference_status()
    rows = [
        (
            m.symbol,
            f"h{m.horizon}",
            m.version,
            "yes" if m.served else f"no: {m.problem}",
            f"{status.prediction_drift.get(f'{m.symbol}/h{m.horizon}', 0.0):.4f}",
            m.sha256[:12],
        )
        for m in status.models
    ]
    return pages.table(("symbol", "horizon", "version", "served", "prediction drift", "sha256"), rows, "models")


def dashboard(console: Any, s: Services, session: Any, flash: str, actions: dict[str, Any]) -> str:
    """The main page; `actions` are the server's buttons (passed in: the server imports this module)."""

    def curve() -> str:
        return pages.curve_svg(s.call("risk", s.risk.GetEquityCurve, _curve_request()).points)

    parts = [
        f'<p class="flash" id="flash">{e(flash)}</p>' if flash else "",
        '<p><a href="/" id="refresh">refresh</a></p>',
        pages.action_buttons(actions),
        _section("Services", "services", lambda: _health(s)),
        _section("Trading state", "state", lambda: _state(s)),
        _section("Equity and drawdown", "equity", curve),
        _section("Positions", "positions-section", lambda: _positions(s)),
        _section("Recent fills", "fills-section", lambda: _fills(s)),
        _section(
            "Recent decisions", "decisions-section", lambda: _decisions(s, console.settings.console.decisions_shown)
        ),
        _section("Models", "models-section", lambda: _models(s)),
    ]
    return pages.page("QuantumEdge console", "".join(parts), session.subject)


def _curve_request() -> Any:
    from quantumedge.v1 import risk_pb2

    return risk_pb2.GetEquityCurveRequest(max_points=600)


def explain_page(s: Services, session: Any, decision_id: str) -> str:
    body = _section(
        "Decision", "explain", lambda: "<pre>" + e("\n".join(explain_lines(s.explain(decision_id)))) + "</pre>"
    )
    return pages.page("Decision", body + '<p><a href="/">back</a></p>', session.subject)
