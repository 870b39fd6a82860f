"""The backtest's figures as rich tables on the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from quantumedge.backtest.metrics import Figures


def print_figures(figs: Figures, console: Console, title: str) -> None:
    overview = Table(title=title)
    for col in ("events", "signals", "intents", "rejections", "orders", "fills", "fees", "PnL (quote)"):
        overview.add_column(col, justify="right")
    overview.add_column("max drawdown", justify="right")
    overview.add_column("round trips (win rate)", justify="right")
    win = f"{figs.win_rate:.0%}" if figs.win_rate is not None else "-"
    overview.add_row(
        f"{figs.events:,}",
        f"{figs.signals:,}",
        f"{figs.intents:,}",
        f"{figs.rejections:,}",
        f"{figs.orders:,}",
        f"{figs.fills:,}",
        f"{figs.fees:.2f}",
        f"{figs.pnl:+.2f}",
        f"{figs.max_drawdown:.2f} ({figs.max_drawdown_fraction:.2%})",
        f"{figs.round_trips} ({win})",
    )
    console.print(overview)

    per = Table(title="per symbol")
    for col in ("symbol", "orders", "fills", "fees", "realised (net)", "unrealised", "PnL", "position", "trips"):
        per.add_column(col, justify="right" if col != "symbol" else "left")
    for f in sorted(figs.per_symbol.values(), key=lambda f: f.symbol):
        per.add_row(
            f.symbol,
            str(f.orders),
            str(f.fills),
            f"{f.fees:.2f}",
            f"{f.realized_pnl:+.2f}",
            f"{f.unrealized_pnl:+.2f}",
            f"{f.pnl:+.2f}",
            f"{f.position:g}",
            f"{f.round_trips} ({f.wins} won)",
        )
    console.print(per)

    if figs.rejections_by_reason:
        reasons = Table(title="rejections by reason (a decision can fail several checks)")
        reasons.add_column("reason")
        reasons.add_column("decisions", justify="right")
        reasons.add_column("share", justify="right")
        for name, count in figs.rejections_by_reason.most_common():
            reasons.add_row(name, f"{count:,}", f"{count / max(1, figs.rejections):.1%}")
        console.print(reasons)
    if figs.order_rejects_by_code:
        codes = ", ".join(f"{code} x{n}" for code, n in figs.order_rejects_by_code.most_common())
        console.print(f"[yellow]orders refused by execution or the venue:[/yellow] {figs.rejected_orders} ({codes})")
    for halt in figs.halts:
        console.print(f"[red]halted:[/red] {halt}")
    console.print(
        f"equity {figs.starting_equity:,.2f} -> {figs.final_equity:,.2f}  "
        f"(realised {figs.realized_pnl:+.2f} net of fees, unrealised {figs.unrealized_pnl:+.2f})"
    )
