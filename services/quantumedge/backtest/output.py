"""A backtest's records as files: fills, equity curve and decisions in Parquet, the figures in JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantumedge.backtest.metrics import Figures
from quantumedge.backtest.simulation import BacktestResult
from quantumedge.v1 import common_pb2


def fills_table(result: BacktestResult) -> pa.Table:
    rows = [r for r in result.reports if r.HasField("fill")]
    return pa.table(
        {
            "time_ns": pa.array([r.fill.time_ns or r.time_ns for r in rows], pa.int64()),
            "symbol": pa.array([r.order.symbol for r in rows], pa.string()),
            "client_order_id": pa.array([r.fill.client_order_id for r in rows], pa.string()),
            "trade_id": pa.array([r.fill.trade_id for r in rows], pa.string()),
            "side": pa.array([common_pb2.Side.Name(r.order.side) for r in rows], pa.string()),
            "price": pa.array([r.fill.price for r in rows], pa.float64()),
            "quantity": pa.array([r.fill.quantity for r in rows], pa.float64()),
            "fee": pa.array([r.fill.fee for r in rows], pa.float64()),
            "is_maker": pa.array([r.fill.is_maker for r in rows], pa.bool_()),
            "realized_pnl_delta": pa.array([r.realized_pnl_delta for r in rows], pa.float64()),
            "position_after": pa.array([r.position.quantity for r in rows], pa.float64()),
            "note": pa.array([r.note for r in rows], pa.string()),
        }
    )


def equity_table(result: BacktestResult) -> pa.Table:
    eq = result.equity
    return pa.table(
        {
            "time_ns": pa.array([p.time_ns for p in eq], pa.int64()),
            "equity": pa.array([p.equity for p in eq], pa.float64()),
            "realized_pnl": pa.array([p.realized_pnl for p in eq], pa.float64()),
            "unrealized_pnl": pa.array([p.unrealized_pnl for p in eq], pa.float64()),
        }
    )


def decisions_table(result: BacktestResult) -> pa.Table:
    ds = result.decisions
    return pa.table(
        {
            "time_ns": pa.array([d.decided_time_ns for d in ds], pa.int64()),
            "decision_id": pa.array([d.decision_id for d in ds], pa.string()),
            "signal_id": pa.array([d.signal_id for d in ds], pa.string()),
            "symbol": pa.array([d.symbol for d in ds], pa.string()),
            "approved": pa.array([d.approved for d in ds], pa.bool_()),
            "reasons": pa.array([list(d.reasons) for d in ds], pa.list_(pa.string())),
            "intent_id": pa.array([d.intent.intent_id for d in ds], pa.string()),
            "quantity": pa.array([d.intent.quantity for d in ds], pa.float64()),
        }
    )


def write_outputs(directory: Path, result: BacktestResult, figs: Figures, run_info: dict) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (
        ("fills", fills_table(result)),
        ("equity", equity_table(result)),
        ("decisions", decisions_table(result)),
    ):
        path = directory / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        written.append(path)
    doc = dataclasses.asdict(figs)
    doc["rejections_by_reason"] = dict(figs.rejections_by_reason.most_common())
    doc["pnl"] = figs.pnl
    doc["win_rate"] = figs.win_rate
    doc["run"] = run_info
    path = directory / "summary.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
