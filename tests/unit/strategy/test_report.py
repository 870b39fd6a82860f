"""Must show (issue 12): `quantumedge backtest --report DIR` writes the HTML report a quant reads."""

from __future__ import annotations

from pathlib import Path

from quantumedge.backtest.cli import backtest_main


def test_backtest_writes_an_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    rc = backtest_main(["--synthetic-steps", "7200", "--seed", "2024", "--allow-missing-models", "--report", str(out)])
    assert rc == 0
    page = (out / "index.html").read_text()
    for part in ("<svg", "equity", "drawdown", "Sharpe", "Sortino", "profit factor", "expectancy"):
        assert part in page
    for part in ("Per horizon", "Per regime", "Trades", "random entries, same exits", "buy and hold"):
        assert part in page
