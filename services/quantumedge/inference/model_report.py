"""The start-up model report: what will run, printed as one block before any market data is read.

Per symbol x horizon: served or not, the registry version, the training data's source, the promotion
gate's verdict and headline figures, and the artifact's sha256 (what the registry verified). Under it,
what the run means: the execution mode and, on real market data, whether synthetic-trained models are
being served (they carry no evidence of an edge on a real market) or refused, and the setting either way.
`report_lines` is pure; `print_model_report` renders it with rich.
"""

from __future__ import annotations

from collections.abc import Sequence

from quantumedge.inference.models import ModelStatus

# The gate figures shown (the manifest holds more; `quantumedge models` lists them all).
HEADLINE_FIGURES = ("oos_auc", "oos_log_loss", "oos_base_log_loss", "oos_ece", "holdout_expectancy_bps")
SYNTHETIC_SETTING = "QE_INFERENCE__ALLOW_SYNTHETIC_MODELS"
REAL_FEEDS = ("binance", "capture", "replay")


def _gate(st: ModelStatus) -> str:
    gate = st.gate or {}
    if not gate:
        return "-"
    verdict = "passed" if gate.get("passed") is True else "FAILED"
    figures = gate.get("figures") or {}
    shown = [f"{k.removeprefix('oos_')}={float(figures[k]):.3f}" for k in HEADLINE_FIGURES if k in figures]
    return " ".join([verdict, *shown])


def rows(status: Sequence[ModelStatus]) -> list[tuple[str, ...]]:
    """One row per symbol x horizon: symbol, horizon, served, version, source, gate, sha256, problem."""
    return [
        (
            st.symbol,
            f"{st.horizon} min",
            "yes" if st.served else "NO",
            st.version or "-",
            st.data_source or "-",
            _gate(st),
            st.sha256[:16] if st.sha256 else "-",
            st.problem,
        )
        for st in status
    ]


def report_lines(status: Sequence[ModelStatus], mode: str, feed: str, synthetic_allowed: bool) -> list[str]:
    """The notes under the table: mode, what is missing, and the synthetic-models statement on real data."""
    served = [st for st in status if st.served]
    lines = [f"execution mode: {mode}" + (" (nothing is sent to any venue)" if mode == "observe" else "")]
    lines.append(f"market data: {feed}; models served: {len(served)} of {len(status)}")
    synthetic = [st for st in status if st.data_source.startswith("synthetic")]
    if feed in REAL_FEEDS and synthetic:
        if synthetic_allowed:
            lines.append(
                f"WARNING: {len(synthetic)} model(s) trained on synthetic data are served on real market data "
                f"({SYNTHETIC_SETTING}=true): their signals carry no evidence of an edge on this market"
            )
        else:
            lines.append(
                f"synthetic-trained models are not served on real market data; set {SYNTHETIC_SETTING}=true to "
                "observe them anyway"
            )
    if not served:
        lines.append("no model is served: no signal, and so no decision, will be made")
    return lines


def print_model_report(status: Sequence[ModelStatus], mode: str, feed: str, synthetic_allowed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="QuantumEdge model report: what will run")
    for name in ("symbol", "horizon", "served", "version", "source", "gate", "sha256", "problem"):
        table.add_column(name, overflow="fold")
    for row in rows(status):
        table.add_row(*row)
    console = Console(width=200)
    console.print(table)
    for line in report_lines(status, mode, feed, synthetic_allowed):
        console.print(line, markup=False, highlight=False)
