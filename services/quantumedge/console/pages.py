"""HTML for the console: server-rendered, no script, every value escaped. Pure functions of what the
services answered."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from quantumedge.ops import units

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#f6f7f9}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;background:#fff;margin:.4rem 0}td,th{border:1px solid #d5d9e0;padding:.25rem .5rem;
font-size:.85rem;text-align:left}th{background:#eceff3}.halted{color:#b00020;font-weight:bold}
.active{color:#0a7d32;font-weight:bold}.reducing{color:#a15c00}
.flash{background:#fff6d5;border:1px solid #e5c100;padding:.5rem}
form.inline{display:inline}button{margin:.2rem;padding:.35rem .8rem}.danger{background:#b00020;color:#fff}
"""


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, subject: str = "") -> str:
    who = f'<p>signed in as <b id="subject">{e(subject)}</b> · <a href="/logout">log out</a></p>' if subject else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1>{who}{body}</body></html>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str, raw: bool = False) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{e(table_id)}"><tr>{head}</tr>{body}</table>'


def login(message: str = "") -> str:
    note = f'<p class="flash" id="login-error">{e(message)}</p>' if message else ""
    form = (
        '<form method="post" action="/login" id="login">'
        '<label>Operator token <input type="password" name="token" id="token" autocomplete="off" required></label>'
        '<button type="submit" id="sign-in">Sign in</button></form>'
    )
    return page("QuantumEdge console: sign in", note + form)


def curve_svg(points: Sequence[Any], width: int = 640, height: int = 160) -> str:
    """Equity (line) and drawdown (area below) as one small SVG."""
    if len(points) < 2:
        return '<p id="curve">not enough history yet</p>'
    equities = [p.equity for p in points]
    lo, hi = min(equities), max(equities)
    span = (hi - lo) or 1.0
    t0, t1 = points[0].time_ns, points[-1].time_ns or 1
    dt = (t1 - t0) or 1

    def x(p: Any) -> float:
        return (p.time_ns - t0) / dt * width

    line = " ".join(f"{x(p):.1f},{height - (p.equity - lo) / span * height:.1f}" for p in points)
    worst = max(max(p.drawdown for p in points), 1e-9)
    area = " ".join(f"{x(p):.1f},{p.drawdown / worst * height * 0.3:.1f}" for p in points)
    return (
        f'<svg id="curve" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'style="background:#fff;border:1px solid #d5d9e0">'
        f'<polyline points="0,0 {area} {width},0" fill="#f3c4c4" stroke="none"/>'
        f'<polyline points="{line}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/></svg>'
        f"<p>equity {units.money(lo)} to {units.money(hi)}; worst drawdown {units.fraction(worst)}</p>"
    )


def action_buttons(actions: dict[str, Any]) -> str:
    out = []
    for name, action in actions.items():
        out.append(
            f'<form class="inline" method="get" action="/confirm"><input type="hidden" name="action" value="{e(name)}">'
            f'<button type="submit" id="action-{e(name)}" class="{"danger" if action.danger else ""}">'
            f"{e(action.label)}</button></form>"
        )
    return "<div id='actions'>" + "".join(out) + "</div>"


def confirm(action_name: str, action: Any, csrf: str, subject: str) -> str:
    symbol = '<label>Symbol (empty = all) <input name="symbol" id="symbol"></label><br>' if action.takes_symbol else ""
    body = (
        f"<p id='confirm-text'>{e(action.explain)}</p>"
        f'<form method="post" action="/action" id="confirm-form">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="action" value="{e(action_name)}">{symbol}'
        f'<label>Reason <input name="reason" id="reason" value="{e(action.label.lower())} from the console">'
        "</label><br>"
        f'<button type="submit" id="confirm" class="danger">Yes, {e(action.label.lower())}</button>'
        ' <a href="/" id="cancel">No, go back</a></form>'
    )
    return page(f"Confirm: {action.label}", body, subject)
