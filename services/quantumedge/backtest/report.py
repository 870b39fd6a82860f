"""`quantumedge backtest --report DIR`: one HTML page a quant reads.

Equity and drawdown (inline SVG), the trades table (entry, exit, duration, return, reason), Sharpe and
Sortino (of hourly equity returns, annualised), profit factor, expectancy net of costs, per-regime and
per-horizon breakdowns, and the same market against buy-and-hold and random entries with the same exits.
"""

from __future__ import annotations

import html
import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from quantumedge.backtest.simulation import EquityPoint
from quantumedge.backtest.trades import Trade, expectancy

HOUR_NS = 3_600_000_000_000
TRADE_COLS = [
    "symbol",
    "side",
    "entry",
    "exit",
    "duration s",
    "entry price",
    "return bps",
    "PnL",
    "reason",
    "h",
    "regime",
]


def ratios(equity: list[EquityPoint]) -> dict[str, float]:
    """Sharpe and Sortino of hourly equity returns, annualised (365 x 24 hours)."""
    hourly, last_hour = [], None
    for p in equity:
        h = p.time_ns // HOUR_NS
        if h != last_hour:
            hourly.append(p.equity)
            last_hour = h
    if equity:
        hourly.append(equity[-1].equity)
    rets = [b / a - 1 for a, b in itertools.pairwise(hourly) if a > 0]
    if len(rets) < 2:
        return {"sharpe": 0.0, "sortino": 0.0}
    mean = sum(rets) / len(rets)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
    down = math.sqrt(sum(min(0.0, r) ** 2 for r in rets) / len(rets))
    scale = math.sqrt(365 * 24)
    return {"sharpe": mean / sd * scale if sd else 0.0, "sortino": mean / down * scale if down else 0.0}


def _svg(points: list[tuple[float, float]], color: str, title: str) -> str:
    if len(points) < 2:
        return f"<p>{title}: not enough points</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    w, h = 900, 220
    sx = (w - 60) / ((x1 - x0) or 1)
    sy = (h - 30) / ((y1 - y0) or 1)
    path = " ".join(f"{50 + (x - x0) * sx:.1f},{h - 20 - (y - y0) * sy:.1f}" for x, y in points)
    return (
        f'<figure><figcaption>{html.escape(title)}</figcaption><svg width="{w}" height="{h}" role="img">'
        f'<text x="2" y="14" font-size="11">{y1:,.2f}</text><text x="2" y="{h - 20}" font-size="11">{y0:,.2f}</text>'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/></svg></figure>'
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _breakdown(trades: list[Trade], key) -> list[list[str]]:
    groups: dict[str, list[Trade]] = defaultdict(list)
    for t in trades:
        groups[str(key(t))].append(t)
    rows = []
    for name, ts in sorted(groups.items()):
        e = expectancy(ts)
        rows.append(
            [name, str(e["trades"]), f"{e['expectancy_bps']:+.2f}", f"{e['win_rate']:.0%}", f"{e['net_pnl']:+.2f}"]
        )
    return rows


def summary_row(name: str, trades: list[Trade], equity: list[EquityPoint], pnl: float | None = None) -> list[str]:
    e, r = expectancy(trades), ratios(equity)
    pf = e["profit_factor"]
    return [
        name,
        str(e["trades"]),
        f"{(e['net_pnl'] if pnl is None else pnl):+.2f}",
        f"{e['expectancy_bps']:+.2f}",
        f"{e['win_rate']:.0%}",
        "inf" if pf == float("inf") else f"{pf:.2f}",
        f"{r['sharpe']:.2f}",
        f"{r['sortino']:.2f}",
    ]


def write_report(
    directory: Path,
    title: str,
    trades: list[Trade],
    equity: list[EquityPoint],
    baselines: dict[str, tuple[list[Trade], list[EquityPoint], float | None]],
) -> Path:
    """Write DIR/index.html; `baselines` maps a name to (trades, equity, PnL override) of a comparison run."""
    directory.mkdir(parents=True, exist_ok=True)
    start = equity[0].time_ns if equity else 0
    eq = [((p.time_ns - start) / HOUR_NS, p.equity) for p in equity]
    peak, dd = -math.inf, []
    for x, y in eq:
        peak = max(peak, y)
        dd.append((x, y - peak))
    cols = ["strategy", "trades", "net PnL", "expectancy bps/trade", "win rate", "profit factor", "Sharpe", "Sortino"]
    comparison = [summary_row("this run", trades, equity)] + [
        summary_row(name, t, e, pnl) for name, (t, e, pnl) in baselines.items()
    ]
    trade_rows = [
        [
            t.symbol,
            t.side,
            _iso(t.entry_ns),
            _iso(t.exit_ns),
            f"{t.duration_s:.0f}",
            f"{t.entry_price:.2f}",
            f"{t.return_bps:+.2f}",
            f"{t.pnl:+.4f}",
            t.reason,
            str(t.horizon_min),
            t.regime,
        ]
        for t in trades
    ]
    breakdown_cols = ["", "trades", "expectancy bps", "win rate", "net PnL"]
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;font-size:13px;text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Against baselines (same market, same exits, same fees)</h2>{_table(cols, comparison)}
{_svg(eq, "#1f77b4", "equity (hours from start)")}{_svg(dd, "#d62728", "drawdown from peak")}
<h2>Per horizon (minutes)</h2>{_table(["horizon", *breakdown_cols[1:]], _breakdown(trades, lambda t: t.horizon_min))}
<h2>Per regime at entry</h2>{_table(["regime", *breakdown_cols[1:]], _breakdown(trades, lambda t: t.regime or "-"))}
<h2>Trades</h2>{_table(TRADE_COLS, trade_rows)}
</body></html>"""
    path = directory / "index.html"
    path.write_text(doc)
    return path
