"""Binance spot order JSON -> the engine's updates, snapshots and fills (pure: no I/O).

Which id names the order is the one subtle part (Binance "Cancel order", "Cancel Order list",
"executionReport"): in an answer to a cancel, `clientOrderId` is the CANCEL request's own id and
`origClientOrderId` is the order that was cancelled; cancelling one leg of an order list cancels the
whole list and answers with the list, whose `orderReports` carry each leg's id as `origClientOrderId`.
In an executionReport, `c` is the cancel request's id on a cancel and `C` the original order's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from quantumedge.execution.domain.filters import SymbolFilters
from quantumedge.execution.domain.orders import (
    ZERO,
    Fill,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    dec,
    value_fee,
)

STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_LIMIT_TYPES = ("LIMIT", "LIMIT_MAKER", "TAKE_PROFIT_LIMIT", "STOP_LOSS_LIMIT")


def ms_to_ns(ms: Any) -> int:
    try:
        return int(ms) * 1_000_000
    except (TypeError, ValueError):
        return 0


def order_reports(body: Any) -> list[Mapping[str, Any]]:
    """The per-order reports of an answer: an order list's `orderReports`, or the single order itself."""
    if isinstance(body, Mapping) and isinstance(body.get("orderReports"), list):
        return [r for r in body["orderReports"] if isinstance(r, Mapping)]
    return [body] if isinstance(body, Mapping) else []


class BinanceParser:
    """Parses Binance order JSON; `filters` names each symbol's base and quote asset (to value fees)."""

    def __init__(self, filters: Callable[[str], SymbolFilters]) -> None:
        self._filters = filters

    def snapshot(self, body: Mapping[str, Any], client_order_id: str = "") -> OrderSnapshot:
        """A query / open-orders entry. `client_order_id`, when given, is the id the order was asked by."""
        kind = body.get("type", "MARKET")
        list_id = body.get("orderListId", -1)
        return OrderSnapshot(
            client_order_id=client_order_id or body.get("origClientOrderId") or body["clientOrderId"],
            symbol=body["symbol"],
            side=Side[body["side"]],
            order_type=OrderType.LIMIT if kind in _LIMIT_TYPES else OrderType.MARKET,
            status=STATUS.get(body["status"], OrderStatus.NEW),
            quantity=dec(body["origQty"]),
            executed_quantity=dec(body.get("executedQty", "0")),
            executed_quote=dec(body.get("cummulativeQuoteQty", "0")),
            price=dec(body.get("price", "0")),
            stop_price=dec(body.get("stopPrice", "0")),
            time_in_force=TIF.get(body.get("timeInForce", ""), TimeInForce.UNSPECIFIED),
            venue_order_id=str(body.get("orderId", "")),
            group_id=str(list_id) if list_id not in (-1, None) else "",
            time_ns=ms_to_ns(body.get("updateTime") or body.get("transactTime") or body.get("time")),
        )

    def placed(self, body: Any) -> list[OrderUpdate]:
        """Updates from a new order or new order list answer (FULL carries the fills with their trade ids)."""
        return [u for report in order_reports(body) for u in self._report_updates(report, report.get("clientOrderId"))]

    def cancelled(self, body: Any) -> list[OrderUpdate]:
        """Updates from a cancel answer, single order or order list: credited to `origClientOrderId`."""
        return [
            u for report in order_reports(body) for u in self._report_updates(report, report.get("origClientOrderId"))
        ]

    def _report_updates(self, body: Mapping[str, Any], cid: Any) -> list[OrderUpdate]:
        cid = str(cid or "")
        symbol = body["symbol"]
        oid = str(body.get("orderId", ""))
        time_ns = ms_to_ns(body.get("transactTime"))
        orig = dec(body.get("origQty", "0"))
        updates = []
        cum = ZERO
        for f in body.get("fills", []):
            price, qty = dec(f["price"]), dec(f["qty"])
            cum += qty
            fill = self.fill(
                symbol,
                cid,
                str(f["tradeId"]),
                price,
                qty,
                dec(f.get("commission", "0")),
                f.get("commissionAsset") or "",
                False,
                time_ns,
            )
            status = OrderStatus.FILLED if orig and cum >= orig else OrderStatus.PARTIALLY_FILLED
            updates.append(OrderUpdate(cid, symbol, status, oid, fill, time_ns))
        if "status" in body:
            updates.append(
                OrderUpdate(
                    cid,
                    symbol,
                    STATUS.get(body.get("status", ""), OrderStatus.NEW),
                    oid,
                    time_ns=time_ns,
                    executed_quantity=dec(body.get("executedQty", "0")),
                    executed_quote=dec(body.get("cummulativeQuoteQty", "0")),
                )
            )
        return updates

    def trades(self, snapshot: OrderSnapshot, body: Any) -> list[Fill]:
        """GET /api/v3/myTrades of one order as fills."""
        return [
            self.fill(
                snapshot.symbol,
                snapshot.client_order_id,
                str(t["id"]),
                dec(t["price"]),
                dec(t["qty"]),
                dec(t.get("commission", "0")),
                t.get("commissionAsset") or "",
                bool(t.get("isMaker")),
                ms_to_ns(t.get("time")),
            )
            for t in body
        ]

    def fill(
        self,
        symbol: str,
        cid: str,
        trade_id: str,
        price: Decimal,
        qty: Decimal,
        commission: Decimal,
        commission_asset: str,
        maker: bool,
        time_ns: int,
    ) -> Fill:
        f = self._filters(symbol)
        fee_quote, base_fee = value_fee(commission, commission_asset, price, f.base_asset, f.quote_asset)
        return Fill(cid, trade_id, price, qty, commission, commission_asset, fee_quote, base_fee, maker, time_ns)

    def execution_report(self, e: Mapping[str, Any]) -> OrderUpdate:
        """A user-data-stream executionReport as an update. On a cancel, `C` holds the original id."""
        cid = e.get("C") or e.get("c") or ""
        symbol = e["s"]
        time_ns = ms_to_ns(e.get("T") or e.get("E"))
        fill = None
        if e.get("x") == "TRADE" and dec(e.get("l", "0")) > 0:
            fill = self.fill(
                symbol,
                cid,
                str(e["t"]),
                dec(e["L"]),
                dec(e["l"]),
                dec(e.get("n") or "0"),
                e.get("N") or "",
                bool(e.get("m")),
                time_ns,
            )
        reject = e.get("r") or ""
        return OrderUpdate(
            client_order_id=cid,
            symbol=symbol,
            status=STATUS.get(e.get("X", ""), OrderStatus.NEW),
            venue_order_id=str(e.get("i", "")),
            fill=fill,
            time_ns=time_ns,
            reject_code=reject if reject != "NONE" else "",
            executed_quantity=dec(e.get("z", "0")),
            executed_quote=dec(e.get("Z", "0")),
        )
