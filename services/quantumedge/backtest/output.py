"""A backtest's records as files, written while it runs: fills, equity curve and decisions in Parquet (in
batches, so a long run never holds them all), the figures in JSON at the end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from quantumedge.backtest.metrics import Figures
from quantumedge.backtest.simulation import EquityPoint
from quantumedge.v1 import common_pb2, execution_pb2, risk_pb2

FILLS = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("symbol", pa.string()),
        ("client_order_id", pa.string()),
        ("trade_id", pa.string()),
        ("role", pa.string()),
        ("side", pa.string()),
        ("price", pa.float64()),
        ("quantity", pa.float64()),
        # The commission as charged, in fee_asset; fee_quote is its value in the quote asset (what PnL counts).
        ("fee", pa.float64()),
        ("fee_asset", pa.string()),
        ("fee_quote", pa.float64()),
        ("is_maker", pa.bool_()),
        ("realized_pnl_delta", pa.float64()),
        ("position_after", pa.float64()),
        ("dust_after", pa.float64()),
        ("note", pa.string()),
    ]
)
EQUITY = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("equity", pa.float64()),
        ("realized_pnl", pa.float64()),
        ("unrealized_pnl", pa.float64()),
    ]
)
DECISIONS = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("decision_id", pa.string()),
        ("signal_id", pa.string()),
        ("symbol", pa.string()),
        ("approved", pa.bool_()),
        ("reasons", pa.list_(pa.string())),
        ("intent_id", pa.string()),
        ("kind", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.float64()),
    ]
)


class _Batched:
    """Rows appended one at a time, written to one Parquet file every `batch` rows."""

    def __init__(self, path: Path, schema: pa.Schema, batch: int = 10_000) -> None:
        self.path = path
        self.schema = schema
        self.batch = batch
        self.rows: list[dict[str, Any]] = []
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


class ParquetOutput:
    """Observer of a run writing DIR/fills.parquet, equity.parquet, decisions.parquet; `close` adds summary.json."""

    def __init__(self, directory: Path) -> None:
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"--out {directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.fills = _Batched(directory / "fills.parquet", FILLS)
        self.equity = _Batched(directory / "equity.parquet", EQUITY)
        self.decisions = _Batched(directory / "decisions.parquet", DECISIONS)

    def on_decision(self, d: risk_pb2.RiskDecision) -> None:
        self.decisions.add(
            {
                "time_ns": d.decided_time_ns,
                "decision_id": d.decision_id,
                "signal_id": d.signal_id,
                "symbol": d.symbol,
                "approved": d.approved,
                "reasons": list(d.reasons),
                "intent_id": d.intent.intent_id,
                "kind": risk_pb2.IntentKind.Name(d.intent.kind) if d.HasField("intent") else "",
                "side": common_pb2.Side.Name(d.intent.side) if d.HasField("intent") else "",
                "quantity": d.intent.quantity,
            }
        )

    def on_report(self, r: execution_pb2.ExecutionReport) -> None:
        if not r.HasField("fill"):
            return
        self.fills.add(
            {
                "time_ns": r.fill.time_ns or r.time_ns,
                "symbol": r.order.symbol,
                "client_order_id": r.fill.client_order_id,
                "trade_id": r.fill.trade_id,
                "role": execution_pb2.OrderRole.Name(r.order.role),
                "side": common_pb2.Side.Name(r.order.side),
                "price": r.fill.price,
                "quantity": r.fill.quantity,
                "fee": r.fill.fee,
                "fee_asset": r.fill.fee_asset,
                "fee_quote": r.fill.fee_quote,
                "is_maker": r.fill.is_maker,
                "realized_pnl_delta": r.realized_pnl_delta,
                "position_after": r.position.quantity,
                "dust_after": r.position.dust_quantity,
                "note": r.note,
            }
        )

    def on_equity(self, p: EquityPoint) -> None:
        self.equity.add(dataclasses.asdict(p))

    def close(self, figs: Figures | None = None, run_info: dict | None = None) -> list[Path]:
        for part in (self.fills, self.equity, self.decisions):
            part.close()
        written = [self.fills.path, self.equity.path, self.decisions.path]
        if figs is not None:
            doc = dataclasses.asdict(figs)
            doc["rejections_by_reason"] = dict(figs.rejections_by_reason.most_common())
            doc["order_rejects_by_code"] = dict(figs.order_rejects_by_code.most_common())
            doc["pnl"] = figs.pnl
            doc["win_rate"] = figs.win_rate
            doc["run"] = run_info or {}
            path = self.directory / "summary.json"
            path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            written.append(path)
        return written
