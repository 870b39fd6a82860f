"""`quantumedge status`: one table of all four services, read through their gRPC APIs and metrics ports."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quantumedge.ops import units
from quantumedge.ops.client import Services, target_host
from quantumedge.shared.config import SERVICE_NAMES
from quantumedge.shared.errors import OperatorError
from quantumedge.v1 import risk_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # annotations only: the caller hands the root in

COLUMNS = ("service", "health", "state", "equity", "PnL today", "drawdown", "positions", "lag", "models")


@dataclass
class Row:
    service: str
    health: str = "?"
    cells: dict[str, str] = field(default_factory=dict)

    def values(self) -> list[str]:
        return [self.service, self.health, *(self.cells.get(c, "") for c in COLUMNS[2:])]


def consumer_lag(host: str, port: int, timeout_s: float = 2.0) -> int | None:
    """Sum of qe_bus_consumer_lag on a service's metrics port (None when it has no endpoint)."""
    if not port:
        return None
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("qe_bus_consumer_lag{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def collect(settings: Settings, services: Services) -> list[Row]:
    rows = {name: Row(name, services.health(name)) for name in SERVICE_NAMES}
    host = target_host(settings)
    for name, row in rows.items():
        lag = consumer_lag(host, settings.ports.metrics_of(name))
        row.cells["lag"] = "" if lag is None or name == "ingest" else str(lag)
    _fill(rows, services)
    return list(rows.values())


def _fill(rows: dict[str, Row], services: Services) -> None:
    """Each service's own figures; one that does not answer keeps its health and blanks."""
    for name, fill in (("ingest", _ingest), ("inference", _inference), ("risk", _risk), ("execution", _execution)):
        if rows[name].health == "UNREACHABLE":
            continue
        try:
            fill(rows[name], services)
        except OperatorError as exc:
            rows[name].cells["state"] = exc.reason


def _ingest(row: Row, services: Services) -> None:
    status = services.ingest_status()
    row.cells["state"] = f"{status.source} {'running' if status.running else 'stopped'}"
    row.cells["positions"] = f"{status.events_published} events"


def _inference(row: Row, services: Services) -> None:
    status = services.inference_status()
    served = [m for m in status.models if m.served]
    versions = sorted({f"{m.symbol}/h{m.horizon} {m.version}" for m in served})
    row.cells["state"] = f"{len(served)} models served" + (f", {len(status.missing)} missing" if status.missing else "")
    row.cells["models"] = ", ".join(versions) or "none"


def _risk(row: Row, services: Services) -> None:
    status = services.risk_status()
    row.cells["state"] = "HALTED" if status.halted else "REDUCING" if status.account_state.reason_code else "ACTIVE"
    if status.halted and status.halt_reason:
        row.cells["state"] += f" ({status.halt_reason})"
    elif status.account_state.reason_code:
        row.cells["state"] += f" ({status.account_state.reason_code})"
    reducing = [st.symbol for st in status.symbol_states if st.state == risk_pb2.TRADING_STATE_REDUCING]
    if reducing:
        row.cells["state"] += f"; exits only: {', '.join(reducing)}"
    row.cells["equity"] = units.money(status.equity)
    row.cells["PnL today"] = units.money(status.pnl_today, signed=True)
    row.cells["drawdown"] = units.fraction(status.drawdown)
    row.cells["positions"] = ", ".join(f"{s} {units.money(v)}" for s, v in sorted(status.symbol_exposure.items()))


def _execution(row: Row, services: Services) -> None:
    status = services.execution_status()
    row.cells["state"] = ("HALTED" if status.halted else "ACTIVE") + f" on {status.venue}"
    row.cells["equity"] = units.money(status.equity)
    held = [p for p in services.positions() if p.quantity]
    row.cells["positions"] = ", ".join(f"{p.symbol} {units.quantity(p.quantity)}" for p in held) or "flat"
    row.cells["positions"] += f"; {status.open_orders} open orders"


def print_status(settings: Settings, services: Services) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = collect(settings, services)
    table = Table(title="QuantumEdge status")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    Console(width=200).print(table)
    return 0 if all(r.health == "SERVING" for r in rows) else 1
